//! The real programs the benchmark starts: the relay (one per measurement
//! group, with limits raised for load), the agent sharing this machine, and
//! the console connecting to it. Programs are found next to the running
//! executable, so a release bench uses release programs and a test run uses
//! the debug ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use sprijin_proto::code::SessionCode;
use sprijin_proto::tls::Fingerprint;

use crate::Proc;

/// How long a program may take to print its readiness line.
pub const READY: Duration = Duration::from_secs(30);

/// The path of one of the workspace's programs, built beside this one
/// (`target/PROFILE/`), whether we run as a program there or as a test in
/// `target/PROFILE/deps/`.
pub fn path(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let mut dir = exe
        .parent()
        .context("the running executable has no folder")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if !path.exists() {
        bail!(
            "{} is missing: build the programs first with `cargo build --workspace --bins` (add --release for a release bench)",
            path.display()
        );
    }
    Ok(path)
}

/// A relay program on 127.0.0.1 with a random port and a fresh identity.
pub struct Relay {
    pub proc: Proc,
    pub addr: String,
    pub fingerprint: Fingerprint,
    _dir: Option<tempfile::TempDir>,
}

impl Relay {
    /// Starts the relay `program` (the one built beside this one when
    /// `None`) with limits high enough for `clients` connections from this
    /// one address, and waits for its `listening on` line.
    pub fn start(program: Option<&Path>, clients: usize) -> anyhow::Result<Relay> {
        let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
        let mut relay =
            Relay::start_at(program, clients, "127.0.0.1:0", &dir.path().join("relay"))?;
        relay._dir = Some(dir);
        Ok(relay)
    }

    /// Starts the relay as [`Relay::start`] does, on `listen` with its
    /// state in `data_dir`, which outlives it (for a restart).
    pub fn start_at(
        program: Option<&Path>,
        clients: usize,
        listen: &str,
        data_dir: &Path,
    ) -> anyhow::Result<Relay> {
        let room = (clients + 100).to_string();
        let program = match program {
            Some(p) => p.to_path_buf(),
            None => path("sprijin-relay")?,
        };
        let mut cmd = Command::new(program);
        cmd.args(["--listen", listen, "--data-dir"])
            .arg(data_dir)
            .args(["--waiting-per-address", &room])
            .args(["--max-connections", &room])
            .args(["--connections-per-address", &room])
            .args(["--opens-per-minute", "1000000"])
            .args(["--max-sessions", &room])
            .args(["--claims-per-minute", "1000000"]);
        let proc = Proc::spawn(cmd);
        let Some(line) = proc.stdout.wait_for("listening on ", READY) else {
            bail!("the relay did not start: {}", proc.stderr.text());
        };
        // listening on HOST:PORT fingerprint sha256:HEX
        let words: Vec<&str> = line.split_whitespace().collect();
        let [_, _, addr, _, fingerprint] = words[..] else {
            bail!("unexpected first line from the relay: {line}");
        };
        Ok(Relay {
            addr: addr.to_string(),
            fingerprint: fingerprint.parse()?,
            proc,
            _dir: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
}

/// `sprijin-agent share` through `relay`, answering yes to the question
/// whether the technician may look, with the code it printed.
pub struct Agent {
    pub proc: Proc,
    pub code: SessionCode,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub fn start(relay: &Relay) -> anyhow::Result<Agent> {
        let dir = tempfile::tempdir().context("cannot make a temporary folder")?;
        let mut cmd = Command::new(path("sprijin-agent")?);
        cmd.args(["share", "--relay", &relay.addr, "--relay-fingerprint"])
            .arg(relay.fingerprint.to_string())
            .arg("--data-dir")
            .arg(dir.path());
        let mut proc = Proc::spawn(cmd);
        proc.answer(&["y"]);
        let Some(line) = proc.stdout.wait_for("code: ", READY) else {
            bail!(
                "the agent printed no code: {} {}",
                proc.stdout.text(),
                proc.stderr.text()
            );
        };
        let code = line
            .trim_start_matches("code: ")
            .trim()
            .parse()
            .with_context(|| format!("the agent printed a malformed code: {line}"))?;
        Ok(Agent {
            proc,
            code,
            _dir: dir,
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.child.id()
    }
}

/// `sprijin-console connect CODE` through `relay`, running `exec` in order
/// and printing JSON events.
pub fn console(relay: &Relay, code: &SessionCode, exec: &[&str]) -> anyhow::Result<Command> {
    let mut cmd = Command::new(path("sprijin-console")?);
    cmd.arg("connect")
        .arg(code.to_string())
        .args(["--relay", &relay.addr, "--relay-fingerprint"])
        .arg(relay.fingerprint.to_string())
        .args(["--name", "bench", "--json"]);
    for e in exec {
        cmd.args(["--exec", e]);
    }
    Ok(cmd)
}
