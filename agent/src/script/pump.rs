//! A run's output pump: reads stdout and stderr together, forwards what fits
//! under the cap as events, counts the rest, and hashes what was forwarded.

use std::future::Future;
use std::io;
use std::pin::Pin;

use sha2::{Digest, Sha256};
use sprijin_proto::message::script::OutStream;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::runner::{CHUNK_SIZE, RunEvent};

/// Reads both output streams and forwards what fits under the cap.
pub(super) struct Pump {
    /// `None` once the receiver is gone; output is then only counted.
    events: Option<mpsc::Sender<RunEvent>>,
    cap: u64,
    pub(super) produced: u64,
    pub(super) forwarded: u64,
    truncated: bool,
    pub(super) digest: Sha256,
}

impl Pump {
    pub(super) fn new(events: mpsc::Sender<RunEvent>, cap: u64) -> Pump {
        Pump {
            events: Some(events),
            cap,
            produced: 0,
            forwarded: 0,
            truncated: false,
            digest: Sha256::new(),
        }
    }

    /// Forwards both streams until each reaches its end.
    pub(super) async fn run<O, E>(&mut self, mut stdout: Option<O>, mut stderr: Option<E>)
    where
        O: AsyncRead + Unpin,
        E: AsyncRead + Unpin,
    {
        let mut out_buf = vec![0u8; CHUNK_SIZE];
        let mut err_buf = vec![0u8; CHUNK_SIZE];
        loop {
            // Reads are cancel safe, so losing the race costs no data.
            let (stream, read) = tokio::select! {
                read = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => {
                    (OutStream::Stdout, read)
                }
                read = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => {
                    (OutStream::Stderr, read)
                }
                else => break,
            };
            match (stream, read) {
                (OutStream::Stdout, Ok(n)) if n > 0 => {
                    self.take(OutStream::Stdout, out_buf.get(..n).unwrap_or_default())
                        .await;
                }
                (OutStream::Stderr, Ok(n)) if n > 0 => {
                    self.take(OutStream::Stderr, err_buf.get(..n).unwrap_or_default())
                        .await;
                }
                // End of stream, or a pipe error that leaves nothing to read.
                (OutStream::Stdout, _) => stdout = None,
                (OutStream::Stderr, _) => stderr = None,
            }
        }
    }

    async fn take(&mut self, stream: OutStream, data: &[u8]) {
        self.produced = self.produced.saturating_add(data.len() as u64);
        let room = self.cap.saturating_sub(self.forwarded);
        let keep = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let (kept, over) = data.split_at(keep);
        if !kept.is_empty() {
            self.digest.update(kept);
            self.forwarded = self.forwarded.saturating_add(kept.len() as u64);
            self.send(RunEvent::Output {
                stream,
                data: kept.to_vec(),
            })
            .await;
        }
        if !over.is_empty() && !self.truncated {
            self.truncated = true;
            self.send(RunEvent::Truncated { cap: self.cap }).await;
        }
    }

    async fn send(&mut self, event: RunEvent) {
        let Some(events) = &self.events else {
            return;
        };
        if events.send(event).await.is_err() {
            self.events = None;
        }
    }
}

async fn read_some<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        // A closed stream never yields again; select! skips it by its guard.
        None => std::future::pending().await,
    }
}

/// The output pump, polled alongside whatever the run is waiting for, so
/// output keeps flowing while the group is being watched or stopped.
pub(super) struct Pumping<'a> {
    pub(super) future: Pin<&'a mut (dyn Future<Output = ()> + Send + 'a)>,
    pub(super) done: bool,
}

impl Pumping<'_> {
    pub(super) async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> T {
        tokio::pin!(work);
        loop {
            tokio::select! {
                () = self.future.as_mut(), if !self.done => self.done = true,
                out = &mut work => return out,
            }
        }
    }

    /// Lets the pump run to its end, unless `stop` completes first.
    pub(super) async fn finish_unless(&mut self, stop: impl Future<Output = ()>) {
        if !self.done {
            tokio::select! {
                () = self.future.as_mut() => self.done = true,
                () = stop => {}
            }
        }
    }
}
