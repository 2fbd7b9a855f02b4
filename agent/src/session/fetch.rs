//! Sending a file the technician asked for, once the person agrees.
//!
//! Nothing on the disk is touched before the person's yes: the requested
//! path is first made plain by looking at its text only (absolute, no `..`,
//! nothing that would not show as written) and that plain path is the one
//! the person is asked about. After the yes the file is opened without
//! following any link on the way (`platform::open_no_follow`) and without
//! blocking, and what was opened must be a regular file under the size
//! cap. It is read in pieces that interleave with the session's other
//! messages, its SHA-256 computed on the way; if its size or modification
//! time changed while it was read, or it held more or less than it said,
//! the transfer is refused at the end and the console keeps nothing.
//!
//! Whatever the reason a file is not sent, the technician gets the same
//! words, [`NOT_SENT`], so refusals cannot be used to learn what exists on
//! the person's machine; the person's screen and the audit log keep the
//! real reason, and the audit log also what had already gone out (bytes
//! and SHA-256) when a transfer was cut short.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use sprijin_proto::diag_text::human_bytes;
use sprijin_proto::message::session::{AgentMsg, RequestId};
use sprijin_proto::text::clean_line;
use tokio::sync::{mpsc, watch};

use super::{Ctx, StopReason, ask_recorded, record, stop_requested};
use crate::audit::AuditEvent;
use crate::consent::Answer;
use crate::face::{Detail, Notice, Question};
use crate::platform::{self, OpenError};

/// How much of the file goes in one message.
pub const CHUNK: usize = 64 * 1024;

/// What the technician is told whenever a file is not sent, whatever the
/// reason.
pub const NOT_SENT: &str =
    "the file was not sent; the person's screen and the agent's audit log say why";

/// What went to the technician of one file: bytes and their SHA-256.
#[derive(Default)]
struct Sent {
    bytes: u64,
    hash: Sha256,
}

impl Sent {
    /// What was sent once `data` is sent too.
    fn and(&self, data: &[u8]) -> Sent {
        let mut hash = self.hash.clone();
        hash.update(data);
        Sent {
            bytes: self.bytes + data.len() as u64,
            hash,
        }
    }
}

/// Sends the file at `path` if the person agrees; every refusal is
/// recorded with its reason and what was sent, told to the person, and
/// sent to the technician as [`NOT_SENT`].
pub(super) async fn fetch(
    ctx: &Ctx,
    id: RequestId,
    path: String,
    mut stop: watch::Receiver<Option<StopReason>>,
) {
    let mut sent = Sent::default();
    if let Err(reason) = send_file(ctx, id, &path, &mut stop, &mut sent).await {
        ctx.face.show(Notice::FileNotSent {
            reason: reason.clone(),
        });
        let sent_sha256 = (sent.bytes > 0).then(|| hex::encode(sent.hash.finalize()));
        let event = AuditEvent::FileRefused {
            path: clean_line(&path).into_owned(),
            reason,
            sent_bytes: sent.bytes,
            sent_sha256,
        };
        if let Err(e) = record(&ctx.audit, event).await {
            ctx.face.show(Notice::Problem(e.to_string()));
        }
        ctx.refuse(id, NOT_SENT).await;
    }
}

async fn send_file(
    ctx: &Ctx,
    id: RequestId,
    requested: &str,
    stop: &mut watch::Receiver<Option<StopReason>>,
    sent: &mut Sent,
) -> Result<(), String> {
    let path = plain_path(requested)?;
    let shown = path.display().to_string();
    ctx.audit
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check_writable()
        .map_err(|e| format!("nothing was sent: {e}"))?;
    let question = Question {
        text: format!(
            "the technician asks for a copy of this file:\n  {shown}\n  (files over {} are not sent)",
            human_bytes(ctx.config.fetch_cap)
        ),
        detail: Detail::File {
            path: shown.clone(),
        },
    };
    let (answer, withdrawn) = ask_recorded(ctx, question, stop)
        .await
        .map_err(|e| format!("nothing was sent: {e}"))?;
    if withdrawn.is_some() {
        return Err(format!(
            "the request for {shown} was withdrawn before the person answered; nothing was sent"
        ));
    }
    match answer {
        Answer::Yes => {}
        Answer::NoInput => {
            return Err(format!(
                "nobody answered whether to send {shown}: the agent's input is closed"
            ));
        }
        Answer::NoAnswer => {
            return Err(format!(
                "the person did not answer in time whether to send {shown}"
            ));
        }
        Answer::No | Answer::Withdrawn => {
            return Err(format!("the person declined to send {shown}"));
        }
    }
    // A yes given just as the request was withdrawn opens nothing.
    if let Some(reason) = stop.borrow().clone() {
        return Err(format!("{shown} was not opened: {}", reason.withdrawn()));
    }
    let (file, before) = open_regular(&path, ctx.config.fetch_cap)?;
    let size = before.len();
    ctx.face.show(Notice::FileSending {
        path: shown.clone(),
        size: format!("{}, {size} bytes", human_bytes(size)),
    });
    if !ctx
        .send(AgentMsg::FileStart {
            id,
            path: shown.clone(),
            size,
        })
        .await
    {
        return Err("the session ended before the file was sent".to_string());
    }

    // Read on a blocking thread; a small queue keeps memory bounded while
    // the connection is slower than the disk.
    let (chunks, mut chunks_rx) = mpsc::channel::<Vec<u8>>(4);
    let reader = tokio::task::spawn_blocking(move || read_all(file, size, chunks));
    let mut cut_short = None;
    loop {
        let chunk = tokio::select! {
            chunk = chunks_rx.recv() => chunk,
            reason = stop_requested(stop) => {
                cut_short = Some(match reason {
                    StopReason::Technician => "the technician stopped the transfer".to_string(),
                    StopReason::SessionEnded(why) => why,
                });
                break;
            }
        };
        let Some(data) = chunk else { break };
        let then = sent.and(&data);
        if !ctx.send(AgentMsg::FileChunk { id, data }).await {
            cut_short = Some("the session ended".to_string());
            break;
        }
        *sent = then;
    }
    drop(chunks_rx);
    if let Some(why) = cut_short {
        return Err(format!(
            "{shown} was not sent whole ({} of {size} bytes went out): {why}",
            sent.bytes
        ));
    }
    let read = reader
        .await
        .map_err(|e| format!("reading {shown} failed: {e}"))?
        .map_err(|e| format!("reading {shown} failed: {e}"))?;
    if let Some(change) = changed(&before, &read) {
        return Err(format!(
            "{shown} changed while it was read ({change}); nothing was kept, ask again once it is quiet"
        ));
    }
    record(
        &ctx.audit,
        AuditEvent::FileSent {
            path: shown.clone(),
            size,
            sha256: read.sha256.clone(),
        },
    )
    .await
    .map_err(|e| format!("{shown} was read but not recorded, so not sent: {e}"))?;
    ctx.face.show(Notice::FileSent {
        path: shown.clone(),
        size: human_bytes(size),
        sha256: read.sha256.clone(),
    });
    ctx.send(AgentMsg::FileEnd {
        id,
        size,
        sha256: read.sha256,
    })
    .await;
    Ok(())
}

/// The path the person is asked about, made from the requested text alone,
/// without looking at the disk: absolute, with `.` and repeated separators
/// dropped. A path that is not absolute, goes up with `..`, or holds
/// characters that would not show as written is refused; an `Err` says,
/// for people, why.
pub fn plain_path(requested: &str) -> Result<PathBuf, String> {
    let shown = clean_line(requested);
    if shown != requested || requested.contains('\0') {
        return Err(format!(
            "the requested path {shown} holds characters that cannot be shown as written (control characters); nothing was asked or opened"
        ));
    }
    let path = Path::new(requested);
    if !path.is_absolute() {
        return Err(format!(
            "{shown} is not a full path: the technician must give the file's path from the root; nothing was asked or opened"
        ));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "{shown} goes up a folder with `..`: only plain full paths are asked about; nothing was asked or opened"
        ));
    }
    Ok(path
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect())
}

/// Opens the plain `path` for reading, without following any link, if it
/// is a regular file of at most `cap` bytes; an `Err` says, for people,
/// why it cannot be sent.
pub fn open_regular(path: &Path, cap: u64) -> Result<(File, Metadata), String> {
    let shown = path.display().to_string();
    let file = platform::open_no_follow(path).map_err(|e| match e {
        OpenError::Link => format!(
            "{shown} has a link on its way (a linked folder, or the file itself is a link): ask for the file by its real path"
        ),
        OpenError::NotPlain(_) => format!("{shown}: {e}"),
        OpenError::NotAFile => format!(
            "{shown} is not a regular file (a socket or a device): only regular files can be fetched"
        ),
        OpenError::Io(e) => match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("{shown} does not exist on the person's machine")
            }
            std::io::ErrorKind::PermissionDenied => {
                format!("the agent may not read {shown}: permission denied")
            }
            std::io::ErrorKind::NotADirectory => {
                format!("{shown} does not exist: a part of its path is not a folder")
            }
            _ => format!("cannot open {shown}: {e}"),
        },
    })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read the size of {shown}: {e}"))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a folder"
        } else {
            "not a regular file (a device, a FIFO or a socket)"
        };
        return Err(format!(
            "{shown} is {what}: only regular files can be fetched"
        ));
    }
    if meta.len() > cap {
        return Err(format!(
            "{shown} is {} ({} bytes), over this machine's limit of {} ({cap} bytes) for fetched files; the person can raise it with sprijin-agent share --fetch-cap BYTES",
            human_bytes(meta.len()),
            meta.len(),
            human_bytes(cap)
        ));
    }
    Ok((file, meta))
}

/// What reading a file found.
#[derive(Debug)]
pub struct ReadOutcome {
    /// Bytes read until the end of the file.
    pub bytes: u64,
    pub sha256: String,
    /// The file's state after the last read.
    pub after: Metadata,
}

/// Reads `file` to its end in [`CHUNK`]s, each sent on `chunks`, and
/// hashes it. Reading stops early once it holds more than `size` bytes:
/// the file grew, which the caller reports.
fn read_all(
    mut file: File,
    size: u64,
    chunks: mpsc::Sender<Vec<u8>>,
) -> std::io::Result<ReadOutcome> {
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    loop {
        let mut buf = vec![0; CHUNK];
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        buf.truncate(n);
        hash.update(&buf);
        bytes += n as u64;
        if bytes > size {
            break;
        }
        if chunks.blocking_send(buf).is_err() {
            break;
        }
    }
    Ok(ReadOutcome {
        bytes,
        sha256: hex::encode(hash.finalize()),
        after: file.metadata()?,
    })
}

/// How the file changed between opening and the end of reading, if it did.
fn changed(before: &Metadata, read: &ReadOutcome) -> Option<String> {
    let size = before.len();
    if read.bytes != size {
        return Some(format!(
            "{} bytes were read where {size} were expected",
            read.bytes
        ));
    }
    if read.after.len() != size {
        return Some(format!(
            "its size went from {size} to {} bytes",
            read.after.len()
        ));
    }
    if before.modified().ok() != read.after.modified().ok() {
        return Some("it was modified".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_under_the_cap_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, b"hello").unwrap();
        let (_, meta) = open_regular(&file, 5).unwrap();
        assert_eq!(meta.len(), 5);

        let err = open_regular(&file, 4).unwrap_err();
        assert!(err.contains("over this machine's limit"), "{err}");
        let err = open_regular(&dir.path().join("missing"), 10).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
        let err = open_regular(dir.path(), 10).unwrap_err();
        assert!(err.contains("a folder"), "{err}");
        // Links, FIFOs and devices: the platform's tests and the
        // end-to-end tests.
    }

    #[test]
    fn a_path_is_made_plain_from_its_text_alone() {
        assert_eq!(
            plain_path("//var/./log//syslog").unwrap(),
            PathBuf::from("/var/log/syslog")
        );
        let err = plain_path("/var/log/../../etc/shadow").unwrap_err();
        assert!(err.contains("`..`"), "{err}");
        let err = plain_path("notes.txt").unwrap_err();
        assert!(err.contains("not a full path"), "{err}");
        let err = plain_path("/tmp/a\nb\u{1b}[2J").unwrap_err();
        assert!(err.contains("control characters"), "{err}");
    }

    #[test]
    fn a_file_that_grows_while_read_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, vec![b'a'; 3 * CHUNK]).unwrap();
        let (file, before) = open_regular(&path, u64::MAX).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"more"))
            .unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let read = read_all(file, before.len(), tx).unwrap();
        let mut sent = 0;
        while let Ok(chunk) = rx.try_recv() {
            sent += chunk.len();
        }
        assert!(sent <= 3 * CHUNK);
        let change = changed(&before, &read).expect("a change");
        assert!(change.contains("bytes were read"), "{change}");
    }

    #[test]
    fn an_unchanged_file_reads_whole_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let (file, before) = open_regular(&path, u64::MAX).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let read = read_all(file, before.len(), tx).unwrap();
        let mut got = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            got.extend(chunk);
        }
        assert_eq!(got, content);
        assert_eq!(read.sha256, hex::encode(Sha256::digest(&content)));
        assert_eq!(changed(&before, &read), None);
    }
}
