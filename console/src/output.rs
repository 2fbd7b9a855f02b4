//! A run's output as the console shows it, chunk by chunk.
//!
//! For people (line mode) each stream of a run goes through a
//! [`CleanStream`]: the bytes are decoded as UTF-8 and every control
//! character but `\n` and `\t`, every escape sequence introducer and every
//! bidirectional mark is shown as U+FFFD, so a script's output cannot move
//! the cursor, retitle the window or rewrite what the technician read.
//!
//! For machines (`--json`) each stream goes through a [`Utf8Carry`] and
//! becomes `output` events that keep the exact bytes:
//!
//! ```json
//! {"event":"output","run":3,"stream":"stdout","encoding":"utf8","data":"text"}
//! {"event":"output","run":3,"stream":"stderr","encoding":"base64","data":"AP8b"}
//! ```
//!
//! `encoding` is `utf8` when `data` is the bytes as a JSON string, `base64`
//! (standard alphabet, padded) when the bytes were not UTF-8. A character
//! cut between two chunks is carried over to the next event of its stream,
//! so joining the decoded `data` of one stream's events, in order, gives
//! exactly the bytes that stream produced.

use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sprijin_proto::message::script::OutStream;
use sprijin_proto::message::session::RequestId;
use sprijin_proto::text::{CleanStream, Decoded, Utf8Carry};

/// How one stream of a run is being turned into text.
enum Decoder {
    Clean(CleanStream),
    Exact(Utf8Carry),
}

/// The output of one run, printed as it arrives. Whatever a stream still
/// holds back is printed by [`finish`](Self::finish), or when dropped.
pub struct RunOutput {
    run: RequestId,
    json: bool,
    stdout: Decoder,
    stderr: Decoder,
    /// Line mode: whether the last text printed ended a line.
    at_line_start: bool,
    finished: bool,
}

impl RunOutput {
    pub fn new(run: RequestId, json: bool) -> Self {
        let decoder = || {
            if json {
                Decoder::Exact(Utf8Carry::new())
            } else {
                Decoder::Clean(CleanStream::new())
            }
        };
        RunOutput {
            run,
            json,
            stdout: decoder(),
            stderr: decoder(),
            at_line_start: true,
            finished: false,
        }
    }

    /// Shows one chunk of output from `stream`.
    pub fn chunk(&mut self, stream: OutStream, data: &[u8]) {
        let decoder = match stream {
            OutStream::Stdout => &mut self.stdout,
            OutStream::Stderr => &mut self.stderr,
        };
        match decoder {
            Decoder::Clean(clean) => {
                let text = clean.push(data);
                self.print(&text);
            }
            Decoder::Exact(exact) => {
                let decoded = exact.push(data);
                self.event(stream, decoded);
            }
        }
    }

    /// Shows what the streams still hold back: the end of the run's output.
    /// In line mode, also ends an unfinished last line, so what the console
    /// prints next starts on a line of its own.
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        for stream in [OutStream::Stdout, OutStream::Stderr] {
            let decoder = match stream {
                OutStream::Stdout => &mut self.stdout,
                OutStream::Stderr => &mut self.stderr,
            };
            match decoder {
                Decoder::Clean(clean) => {
                    let text = clean.finish();
                    self.print(&text);
                }
                Decoder::Exact(exact) => {
                    if let Some(rest) = exact.finish() {
                        self.event(stream, Decoded::Bytes(rest));
                    }
                }
            }
        }
        if !self.json && !self.at_line_start {
            self.print("\n");
        }
    }

    fn print(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.at_line_start = text.ends_with('\n');
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn event(&self, stream: OutStream, decoded: Decoded) {
        let (encoding, data) = match decoded {
            Decoded::Text(text) if text.is_empty() => return,
            Decoded::Text(text) => ("utf8", text),
            Decoded::Bytes(bytes) => ("base64", STANDARD.encode(bytes)),
        };
        let event = json!({
            "event": "output", "run": self.run, "stream": stream.to_string(),
            "encoding": encoding, "data": data,
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{event}");
        let _ = out.flush();
    }
}

impl Drop for RunOutput {
    fn drop(&mut self) {
        self.finish();
    }
}
