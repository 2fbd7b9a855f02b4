//! The console's own record of each session: one JSON line per event (the
//! session's start and end, every run asked for, approved, refused or
//! finished), flushed as it happens, in the console's data folder. The
//! agent keeps the authoritative audit log; this is the technician's copy.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Value, json};

pub struct SessionLog {
    path: PathBuf,
    file: File,
}

impl SessionLog {
    /// Creates `DIR/sessions/<time>-<nameplate>.jsonl`, readable by its owner only.
    pub fn create(dir: &Path, nameplate: &str) -> std::io::Result<SessionLog> {
        let folder = dir.join("sessions");
        fs::create_dir_all(&folder)?;
        let stamp = humantime::format_rfc3339_seconds(SystemTime::now())
            .to_string()
            .replace(':', "");
        let path = folder.join(format!("{stamp}-{nameplate}.jsonl"));
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        // On Windows the user's own data folder is private already.
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        Ok(SessionLog { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one event with the current time. A log that cannot be written
    /// must not stop the session, so failures are reported once on stderr.
    pub fn event(&mut self, kind: &str, fields: Value) {
        let line = json!({
            "time": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            "kind": kind,
            "fields": fields,
        });
        // One write per line: the line lands whole, in one system call.
        let mut text = line.to_string();
        text.push('\n');
        if let Err(e) = self.file.write_all(text.as_bytes()) {
            eprintln!(
                "warning: cannot write the session log {}: {e}",
                self.path.display()
            );
        }
    }
}
