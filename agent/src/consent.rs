//! Asking the person: every question goes to the terminal and waits for one
//! line. `y` or `yes` approves; anything else, end of input, or no answer in
//! time denies. One question is asked at a time, so answers cannot be mixed
//! up when several requests arrive together.

use std::io::{BufRead, Write};
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

/// How the person answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// The input ended: nobody can answer any more.
    NoInput,
    /// Nobody answered in time.
    NoAnswer,
}

impl Answer {
    pub fn approved(self) -> bool {
        self == Answer::Yes
    }

    /// The answer in words, for the audit log and the technician.
    pub fn describe(self) -> &'static str {
        match self {
            Answer::Yes => "approved",
            Answer::No => "declined",
            Answer::NoInput => "not answered (input closed)",
            Answer::NoAnswer => "not answered in time",
        }
    }
}

pub struct Consent {
    lines: Mutex<mpsc::Receiver<String>>,
    timeout: Duration,
}

impl Consent {
    /// Reads answers from standard input on a thread of its own, since
    /// reading a terminal blocks.
    pub fn from_stdin(timeout: Duration) -> Consent {
        let (tx, rx) = mpsc::channel(16);
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        Consent {
            lines: Mutex::new(rx),
            timeout,
        }
    }

    /// Answers come from this channel instead (for programs embedding the agent).
    pub fn from_channel(lines: mpsc::Receiver<String>, timeout: Duration) -> Consent {
        Consent {
            lines: Mutex::new(lines),
            timeout,
        }
    }

    /// Shows `question` and waits for the answer.
    pub async fn ask(&self, question: &str) -> Answer {
        let mut lines = self.lines.lock().await;
        {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{question}\nallow? [y/N] ");
            let _ = out.flush();
        }
        let answer = match tokio::time::timeout(self.timeout, lines.recv()).await {
            Err(_) => Answer::NoAnswer,
            Ok(None) => Answer::NoInput,
            Ok(Some(line)) => match line.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => Answer::Yes,
                _ => Answer::No,
            },
        };
        println!("{}", answer.describe());
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_yes_approves() {
        let (tx, rx) = mpsc::channel(8);
        let consent = Consent::from_channel(rx, Duration::from_secs(5));
        for (line, want) in [
            ("y", Answer::Yes),
            (" YES ", Answer::Yes),
            ("n", Answer::No),
            ("sure", Answer::No),
            ("", Answer::No),
        ] {
            tx.send(line.to_string()).await.unwrap();
            assert_eq!(consent.ask("q").await, want, "{line:?}");
        }
        drop(tx);
        assert_eq!(consent.ask("q").await, Answer::NoInput);
    }

    #[tokio::test(start_paused = true)]
    async fn silence_denies_after_the_timeout() {
        let (_tx, rx) = mpsc::channel(8);
        let consent = Consent::from_channel(rx, Duration::from_secs(60));
        assert_eq!(consent.ask("q").await, Answer::NoAnswer);
    }
}
