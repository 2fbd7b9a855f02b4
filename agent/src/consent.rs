//! Asking the person: every question goes to the terminal and waits for one
//! line. `y` or `yes` approves; anything else, end of input, or no answer in
//! time denies. One question is asked at a time, so answers cannot be mixed
//! up when several requests arrive together.
//!
//! A yes is only ever an answer to the question on the screen. At a
//! terminal, whatever was typed before a question appeared (a second "y"
//! for an earlier question, keys pressed while nothing was asked) is thrown
//! away, both what the terminal still holds and what was already read, and
//! only a line typed after the question counts. The question's text shows
//! first and its prompt only [`ARM_DELAY`] later, as the window's Allow
//! button waits, and what was typed in between is thrown away too: a quick
//! "y⏎y⏎" meant for one question cannot approve the next one, which the
//! person has not read. When standard input is not a terminal
//! (automation), each question takes the next line, in order.
//!
//! Question text is made safe to print first: it holds names, titles and
//! descriptions from the other side.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use sprijin_proto::text::clean_text;
use tokio::sync::{Mutex, mpsc};

/// How long a question is on the terminal before its prompt shows and a
/// typed line can answer it; the same as the window's wait before Allow.
pub const ARM_DELAY: Duration = Duration::from_secs(1);

/// How the person answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// The input ended: nobody can answer any more.
    NoInput,
    /// Nobody answered in time.
    NoAnswer,
    /// The question was withdrawn before the person answered.
    Withdrawn,
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
            Answer::Withdrawn => "withdrawn before an answer",
        }
    }
}

/// One line the person typed, and when it was read.
struct Line {
    text: String,
    at: Instant,
}

/// Where answers come from.
enum Source {
    /// Standard input, each line with the time it was read.
    Stamped(mpsc::Receiver<Line>),
    /// A channel of a program embedding the agent.
    Plain(mpsc::Receiver<String>),
}

impl Source {
    async fn recv(&mut self) -> Option<Line> {
        match self {
            Source::Stamped(lines) => lines.recv().await,
            Source::Plain(lines) => lines.recv().await.map(|text| Line {
                text,
                at: Instant::now(),
            }),
        }
    }
}

pub struct Consent {
    lines: Mutex<Source>,
    timeout: Duration,
    /// Answers come from a terminal: input typed before a question is
    /// discarded.
    terminal: bool,
}

impl Consent {
    /// Reads answers from standard input on a thread of its own, since
    /// reading a terminal blocks.
    pub fn from_stdin(timeout: Duration) -> Consent {
        let terminal = std::io::stdin().is_terminal();
        let (tx, rx) = mpsc::channel(16);
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(text) = line else { break };
                let line = Line {
                    text,
                    at: Instant::now(),
                };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        Consent {
            lines: Mutex::new(Source::Stamped(rx)),
            timeout,
            terminal,
        }
    }

    /// Answers come from this channel instead (for programs embedding the
    /// agent), one line per question, in order.
    pub fn from_channel(lines: mpsc::Receiver<String>, timeout: Duration) -> Consent {
        Consent {
            lines: Mutex::new(Source::Plain(lines)),
            timeout,
            terminal: false,
        }
    }

    /// Shows `question` and waits for the answer.
    pub async fn ask(&self, question: &str) -> Answer {
        self.ask_unless(question, std::future::pending()).await
    }

    /// Shows `question` and waits for the answer, unless `withdrawn`
    /// completes first (with the reason, told to the person), which takes
    /// the question off the screen: a later line answers the next question.
    pub async fn ask_unless(
        &self,
        question: &str,
        withdrawn: impl Future<Output = String>,
    ) -> Answer {
        let text = clean_text(question);
        let answer = match self
            .next_line(&text, "allow? [y/N] ", "so this is declined", withdrawn)
            .await
        {
            Reply::Line(text) => match text.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => Answer::Yes,
                _ => Answer::No,
            },
            Reply::NoInput => Answer::NoInput,
            Reply::NoAnswer => return Answer::NoAnswer,
            Reply::Withdrawn => return Answer::Withdrawn,
        };
        println!("{}", answer.describe());
        answer
    }

    /// Shows `question` and waits for a typed answer, with the same rules
    /// as [`ask_unless`](Self::ask_unless): one question at a time, only a
    /// line typed after the question counts, and the same timeout. An empty
    /// line is a refusal to answer.
    pub async fn ask_text_unless(
        &self,
        question: &str,
        withdrawn: impl Future<Output = String>,
    ) -> TextAnswer {
        let text = clean_text(question);
        match self
            .next_line(
                &text,
                "your answer (Enter alone to not answer): ",
                "so it is left unanswered",
                withdrawn,
            )
            .await
        {
            Reply::Line(text) => match text.trim() {
                "" => {
                    println!("you chose not to answer");
                    TextAnswer::Declined
                }
                text => TextAnswer::Text(text.to_string()),
            },
            Reply::NoInput => {
                println!("not answered (input closed)");
                TextAnswer::NoInput
            }
            Reply::NoAnswer => TextAnswer::NoAnswer,
            Reply::Withdrawn => TextAnswer::Withdrawn,
        }
    }

    /// Shows `text`, then `prompt`, and waits for the next line typed after
    /// the prompt, one question at a time. At a terminal the prompt shows
    /// [`ARM_DELAY`] after the text. On a timeout, the person is told,
    /// followed by `on_timeout`.
    async fn next_line(
        &self,
        text: &str,
        prompt: &str,
        on_timeout: &str,
        withdrawn: impl Future<Output = String>,
    ) -> Reply {
        tokio::pin!(withdrawn);
        // A question waiting for its turn can be withdrawn too.
        let mut lines = tokio::select! {
            lines = self.lines.lock() => lines,
            _ = &mut withdrawn => return Reply::Withdrawn,
        };
        if self.terminal {
            println!("{text}");
            // Read first: nothing typed before the prompt answers.
            tokio::select! {
                () = tokio::time::sleep(ARM_DELAY) => {}
                reason = &mut withdrawn => {
                    println!("{}: nothing will be done", clean_text(&reason));
                    return Reply::Withdrawn;
                }
            }
            if let Source::Stamped(lines) = &mut *lines {
                discard_typed_ahead(lines);
            }
            print!("{prompt}");
        } else {
            print!("{text}\n{prompt}");
        }
        let _ = std::io::stdout().flush();
        let asked = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let line = tokio::select! {
                line = tokio::time::timeout_at(deadline, lines.recv()) => line,
                reason = &mut withdrawn => {
                    println!("\n{}: nothing will be done", clean_text(&reason));
                    return Reply::Withdrawn;
                }
            };
            return match line {
                Err(_) => {
                    println!(
                        "\nno answer within {} s, {on_timeout}",
                        self.timeout.as_secs()
                    );
                    Reply::NoAnswer
                }
                Ok(None) => Reply::NoInput,
                // Read before the question was on the screen: not an answer to it.
                Ok(Some(line)) if self.terminal && line.at < asked => continue,
                Ok(Some(line)) => Reply::Line(line.text),
            };
        }
    }
}

/// What came back for a question.
enum Reply {
    Line(String),
    NoInput,
    NoAnswer,
    Withdrawn,
}

/// How the person answered a question that wants words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextAnswer {
    /// What they typed, trimmed; never empty.
    Text(String),
    /// They pressed Enter without typing.
    Declined,
    /// The input ended: nobody can answer any more.
    NoInput,
    /// Nobody answered in time.
    NoAnswer,
    /// The question was withdrawn before the person answered.
    Withdrawn,
}

/// Throws away what the person typed while no question was on the screen:
/// what the terminal still holds, and lines already read.
fn discard_typed_ahead(lines: &mut mpsc::Receiver<Line>) {
    // Failure only means standard input is no longer a terminal; lines
    // read before the question are still skipped by their time.
    crate::platform::flush_typed_ahead();
    while lines.try_recv().is_ok() {}
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

    #[tokio::test]
    async fn a_withdrawn_question_leaves_the_next_line_for_the_next_question() {
        let (tx, rx) = mpsc::channel(8);
        let consent = Consent::from_channel(rx, Duration::from_secs(5));
        let answer = consent
            .ask_unless("q", async { "withdrawn".to_string() })
            .await;
        assert_eq!(answer, Answer::Withdrawn);
        tx.send("y".to_string()).await.unwrap();
        assert_eq!(consent.ask("q").await, Answer::Yes);
    }

    #[tokio::test]
    async fn a_typed_answer_is_kept_and_an_empty_line_declines() {
        let (tx, rx) = mpsc::channel(8);
        let consent = Consent::from_channel(rx, Duration::from_secs(5));
        let never = || std::future::pending::<String>();
        for (line, want) in [
            (
                "  it broke on Monday ",
                TextAnswer::Text("it broke on Monday".into()),
            ),
            ("", TextAnswer::Declined),
            ("   ", TextAnswer::Declined),
        ] {
            tx.send(line.to_string()).await.unwrap();
            assert_eq!(
                consent.ask_text_unless("q", never()).await,
                want,
                "{line:?}"
            );
        }
        // Questions of both kinds take lines in order.
        tx.send("y".to_string()).await.unwrap();
        tx.send("y".to_string()).await.unwrap();
        assert_eq!(consent.ask("q").await, Answer::Yes);
        assert_eq!(
            consent.ask_text_unless("q", never()).await,
            TextAnswer::Text("y".into())
        );
        drop(tx);
        assert_eq!(
            consent.ask_text_unless("q", never()).await,
            TextAnswer::NoInput
        );
    }

    #[tokio::test]
    async fn at_a_terminal_a_line_typed_before_the_prompt_does_not_answer() {
        let (tx, rx) = mpsc::channel(8);
        let consent = Consent {
            lines: Mutex::new(Source::Stamped(rx)),
            timeout: Duration::from_secs(10),
            terminal: true,
        };
        let typing = tokio::spawn(async move {
            // A second "y" typed just after the question appeared...
            tokio::time::sleep(ARM_DELAY / 5).await;
            let early = Line {
                text: "y".into(),
                at: Instant::now(),
            };
            tx.send(early).await.unwrap();
            // ...and the person's answer once they read it.
            tokio::time::sleep(ARM_DELAY).await;
            let read = Line {
                text: "n".into(),
                at: Instant::now(),
            };
            tx.send(read).await.unwrap();
        });
        let started = Instant::now();
        assert_eq!(consent.ask("q").await, Answer::No);
        assert!(started.elapsed() >= ARM_DELAY);
        typing.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_text_question_times_out() {
        let (_tx, rx) = mpsc::channel(8);
        let consent = Consent::from_channel(rx, Duration::from_secs(60));
        let answer = consent
            .ask_text_unless("q", std::future::pending::<String>())
            .await;
        assert_eq!(answer, TextAnswer::NoAnswer);
    }
}
