//! Runs one approved script: a program and its arguments, never a shell.
//!
//! # Flow
//!
//! [`run`] starts the program directly with a cleared, minimal environment
//! (the platform's search path and locale), stdin from the null device, the
//! working directory the system's root, and in a process group (on Windows
//! a Job Object) of its own so that everything the script starts can be
//! stopped together. Then three things happen at once:
//!
//! - **Output pump.** Stdout and stderr are read concurrently, in chunks of
//!   at most [`CHUNK_SIZE`], and each chunk is sent as a [`RunEvent::Output`]
//!   in the order the reads completed. Once [`RunSpec::output_cap`] bytes
//!   have been forwarded, further output is still read (so the program never
//!   blocks on a full pipe) but only counted; a single [`RunEvent::Truncated`]
//!   marks the point. Memory stays at one chunk per stream however much the
//!   program prints. If the receiver of the events goes away, the pump keeps
//!   draining and the run finishes normally.
//! - **Timeout and cancel.** When [`RunSpec::timeout`] passes or the `cancel`
//!   future completes, the whole process group gets SIGTERM, and SIGKILL
//!   after [`STOP_GRACE`] if anything in it is still alive. The run then ends
//!   as [`RunStatus::TimedOut`] or [`RunStatus::Cancelled`].
//! - **Normal end.** When the program exits by itself, whatever it left
//!   running in its group gets [`LINGER_GRACE`] to close the output pipes and
//!   is then stopped the same way: nothing a run started outlives it.
//!   Output still in the pipes is forwarded until the run's deadline.
//!
//! - **Guard.** A small guard process watches a pipe only the agent holds
//!   and kills the group if the agent dies without stopping it, so no run
//!   outlives the agent (see `Group::guard`).
//!
//! The process group and its guard are the platform's (`platform::Group`);
//! the output pump is in `pump`.
//!
//! The result is a [`RunEnd`]: status, duration, bytes produced and dropped,
//! and the SHA-256 of the forwarded bytes (see [`RunEnd`] for why only
//! those). A program that cannot be started ends as
//! [`RunStatus::FailedToStart`] with a one-line reason naming it.
//!
//! Dropping the future returned by [`run`] kills the process group at once
//! with SIGKILL; completing `cancel` is the gentle way to stop a run.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};
use sprijin_proto::message::script::{OutStream, RunEnd, RunStatus};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use super::pump::{Pump, Pumping};
use crate::platform::{self, Group};

/// How much output a run forwards unless its spec says otherwise.
pub const DEFAULT_OUTPUT_CAP: u64 = 1024 * 1024;

/// The largest chunk of output forwarded in one event.
pub const CHUNK_SIZE: usize = 16 * 1024;

/// How long a stopped process group gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long processes a script left running may keep its output open after
/// the script itself exited, before they are stopped.
pub const LINGER_GRACE: Duration = Duration::from_secs(2);

/// How long output is still read after a timeout or cancel stopped the run.
pub const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// What to run and within which bounds. Parameters are already substituted
/// into `args`; each element reaches the program as one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// A program name looked up in the platform's search path, or an absolute path.
    pub program: String,
    pub args: Vec<String>,
    pub timeout: Duration,
    /// Output bytes forwarded at most; the rest is counted as dropped.
    pub output_cap: u64,
}

impl RunSpec {
    /// A spec with the default output cap.
    pub fn new(program: impl Into<String>, args: Vec<String>, timeout: Duration) -> RunSpec {
        RunSpec {
            program: program.into(),
            args,
            timeout,
            output_cap: DEFAULT_OUTPUT_CAP,
        }
    }
}

/// What a run reports while it is going on. The run's end is the value
/// [`run`] returns, not an event: the event channel closes when it is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// A chunk of at most [`CHUNK_SIZE`] bytes from one stream.
    Output { stream: OutStream, data: Vec<u8> },
    /// Sent once, when the first byte beyond `cap` is dropped; no `Output`
    /// follows it.
    Truncated { cap: u64 },
}

/// Runs `spec` to its end and reports how it went.
///
/// Output goes to `events` as it arrives. The run stops early when `cancel`
/// completes: pass `std::future::pending()` for a run that cannot be
/// cancelled, or e.g. `async { let _ = rx.await; }` for a oneshot receiver
/// (note that the latter also cancels when the sender is dropped).
///
/// Never panics and never blocks forever: a gone receiver, a program that
/// ignores SIGTERM and children that keep the pipes open are all bounded.
pub async fn run(
    spec: RunSpec,
    events: mpsc::Sender<RunEvent>,
    cancel: impl Future<Output = ()>,
) -> RunEnd {
    let started = Instant::now();
    // A timeout too large to add to the clock means no timeout at all.
    let deadline = started.checked_add(spec.timeout);

    let mut child = match spawn(&spec) {
        Ok(child) => child,
        Err(reason) => {
            return RunEnd {
                status: RunStatus::FailedToStart { reason },
                duration_ms: millis(started.elapsed()),
                bytes: 0,
                dropped: 0,
                output_sha256: hex::encode(Sha256::digest(b"")),
            };
        }
    };

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut group = Group::new(child);
    if let Err(reason) = group.guard() {
        group.stop().await;
        return RunEnd {
            status: RunStatus::FailedToStart { reason },
            duration_ms: millis(started.elapsed()),
            bytes: 0,
            dropped: 0,
            output_sha256: hex::encode(Sha256::digest(b"")),
        };
    }
    let mut pump = Pump::new(events, spec.output_cap);

    let status = {
        let pumping = pump.run(stdout, stderr);
        tokio::pin!(pumping);
        tokio::pin!(cancel);
        let mut out = Pumping {
            future: pumping.as_mut(),
            done: false,
        };

        let first = out
            .alongside(async {
                tokio::select! {
                    exit = group.child.wait() => Ok(exit),
                    () = until(deadline) => Err(Stop::Deadline),
                    () = &mut cancel => Err(Stop::Cancel),
                }
            })
            .await;

        match first {
            Ok(exit) => {
                // The script is done. Anything it left running gets a moment
                // to finish writing, then is stopped with the group.
                out.finish_unless(sleep(LINGER_GRACE)).await;
                out.alongside(group.stop()).await;
                // What is left in the pipes is the script's output and is
                // forwarded; the deadline or a cancel bounds this for
                // descendants that escaped the group and hold the pipes open.
                out.finish_unless(async {
                    tokio::select! {
                        () = until(deadline) => {}
                        () = &mut cancel => {}
                    }
                })
                .await;
                match exit {
                    Ok(exit) => status_of(exit),
                    Err(err) => RunStatus::Unknown {
                        reason: err.to_string(),
                    },
                }
            }
            Err(stop) => {
                out.alongside(group.stop()).await;
                out.finish_unless(sleep(DRAIN_GRACE)).await;
                match stop {
                    Stop::Deadline => RunStatus::TimedOut {
                        after_secs: whole_secs_up(spec.timeout),
                    },
                    Stop::Cancel => RunStatus::Cancelled,
                }
            }
        }
    };

    RunEnd {
        status,
        duration_ms: millis(started.elapsed()),
        bytes: pump.produced,
        dropped: pump.produced.saturating_sub(pump.forwarded),
        output_sha256: hex::encode(pump.digest.finalize_reset()),
    }
}

/// Why a run was stopped before the program exited.
enum Stop {
    Deadline,
    Cancel,
}

/// Starts the program, or says in one line why it could not be started.
fn spawn(spec: &RunSpec) -> Result<Child, String> {
    if spec.program.is_empty() {
        return Err("the script names no program to run".to_owned());
    }
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    platform::prepare_run(&mut command);
    command
        .spawn()
        .map_err(|err| start_failure(&spec.program, &err))
}

/// Turns a spawn error into a reason a person can act on.
fn start_failure(program: &str, err: &io::Error) -> String {
    // escape_debug keeps the reason on one line whatever the name holds.
    let name = program.escape_debug();
    let bare = Path::new(program).components().count() == 1 && !Path::new(program).is_absolute();
    match err.kind() {
        // The same error comes back when the program exists but its script
        // interpreter or loader does not, so look before blaming the program.
        io::ErrorKind::NotFound if bare => match find_in_search_path(program) {
            None => format!("{name} is not installed on this machine (not found in PATH)"),
            Some(path) => format!(
                "{} exists but cannot be run: its interpreter or loader is missing",
                path.display()
            ),
        },
        io::ErrorKind::NotFound if !Path::new(program).exists() => {
            format!("{name} does not exist on this machine")
        }
        io::ErrorKind::NotFound => {
            format!("{name} exists but cannot be run: its interpreter or loader is missing")
        }
        io::ErrorKind::PermissionDenied => {
            format!("{name} may not be run here (permission denied)")
        }
        _ => format!("{name} could not be started: {err}"),
    }
}

fn find_in_search_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(platform::SEARCH_PATH)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn status_of(exit: ExitStatus) -> RunStatus {
    platform::run_status(exit)
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds, rounded up, so a sub-second timeout never reads "0 s".
fn whole_secs_up(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::oneshot;
    use tokio::time::timeout;

    /// Everything a run sent, in order, plus its end.
    struct Outcome {
        events: Vec<RunEvent>,
        end: RunEnd,
    }

    impl Outcome {
        fn stream(&self, wanted: OutStream) -> Vec<u8> {
            self.events
                .iter()
                .filter_map(|event| match event {
                    RunEvent::Output { stream, data } if *stream == wanted => Some(data),
                    _ => None,
                })
                .flatten()
                .copied()
                .collect()
        }

        fn stdout(&self) -> String {
            String::from_utf8_lossy(&self.stream(OutStream::Stdout)).into_owned()
        }

        fn stderr(&self) -> String {
            String::from_utf8_lossy(&self.stream(OutStream::Stderr)).into_owned()
        }

        fn forwarded(&self) -> Vec<u8> {
            let mut bytes = Vec::new();
            for event in &self.events {
                if let RunEvent::Output { data, .. } = event {
                    bytes.extend_from_slice(data);
                }
            }
            bytes
        }
    }

    fn spec(program: &str, args: &[&str]) -> RunSpec {
        RunSpec::new(
            program,
            args.iter().map(|arg| arg.to_string()).collect(),
            Duration::from_secs(20),
        )
    }

    async fn run_with(spec: RunSpec, cancel: impl Future<Output = ()>) -> Outcome {
        let (tx, mut rx) = mpsc::channel(8);
        let collector = tokio::spawn(async move {
            let mut events = Vec::new();
            while let Some(event) = rx.recv().await {
                events.push(event);
            }
            events
        });
        let end = run(spec, tx, cancel).await;
        let events = collector.await.expect("collector task");
        Outcome { events, end }
    }

    async fn run_to_end(spec: RunSpec) -> Outcome {
        run_with(spec, std::future::pending()).await
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Waits until a process is gone. A zombie counts as gone: it runs no
    /// more code, and reaping orphans is the job of the machine's init.
    async fn wait_until_dead(pid: i32) -> bool {
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            let dead = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => true,
                Ok(stat) => stat
                    .rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
            };
            if dead {
                return true;
            }
            if Instant::now() > give_up {
                return false;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a script to write its background child's pid.
    async fn read_pid(path: &Path) -> i32 {
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let pid = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| text.trim().parse().ok());
            if let Some(pid) = pid {
                return pid;
            }
            assert!(Instant::now() < give_up, "the script never wrote its pid");
            sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn a_run_can_be_spawned_on_the_runtime() {
        fn assert_send<T: Send>(_: &T) {}
        let (tx, _rx) = mpsc::channel(1);
        let future = run(spec("true", &[]), tx, std::future::pending());
        assert_send(&future);
    }

    #[tokio::test]
    async fn output_arrives_complete_and_in_order() {
        let outcome = run_to_end(spec("seq", &["1", "30000"])).await;
        let expected: String = (1..=30000).map(|n| format!("{n}\n")).collect();
        assert!(expected.len() > 4 * CHUNK_SIZE, "output spans many chunks");
        assert_eq!(outcome.stdout(), expected);
        assert_eq!(outcome.stderr(), "");
        assert!(outcome.events.iter().all(|event| matches!(
            event,
            RunEvent::Output { data, .. } if !data.is_empty() && data.len() <= CHUNK_SIZE
        )));
        assert_eq!(outcome.end.status, RunStatus::Exited { code: 0 });
        assert!(outcome.end.success());
        assert_eq!(outcome.end.bytes, expected.len() as u64);
        assert_eq!(outcome.end.dropped, 0);
        assert_eq!(outcome.end.output_sha256, sha256_hex(expected.as_bytes()));
    }

    #[tokio::test]
    async fn stdout_and_stderr_each_keep_their_order() {
        let outcome = run_to_end(spec(
            "sh",
            &["-c", "echo a; echo b >&2; echo c; echo d >&2; echo e"],
        ))
        .await;
        assert_eq!(outcome.stdout(), "a\nc\ne\n");
        assert_eq!(outcome.stderr(), "b\nd\n");
        assert_eq!(outcome.end.bytes, 10);
        // The digest follows arrival order across both streams.
        assert_eq!(outcome.end.output_sha256, sha256_hex(&outcome.forwarded()));
    }

    #[tokio::test]
    async fn exit_code_is_reported() {
        let outcome = run_to_end(spec("sh", &["-c", "exit 7"])).await;
        assert_eq!(outcome.end.status, RunStatus::Exited { code: 7 });
        assert!(!outcome.end.success());
    }

    #[tokio::test]
    async fn death_by_signal_is_reported() {
        let outcome = run_to_end(spec("sh", &["-c", "kill -9 $$"])).await;
        assert_eq!(outcome.end.status, RunStatus::Signalled { signal: 9 });
    }

    #[tokio::test]
    async fn arguments_reach_the_program_whole() {
        let outcome = run_to_end(spec("printf", &["%s|", "two words", "$HOME", ";ls"])).await;
        assert_eq!(outcome.stdout(), "two words|$HOME|;ls|");
    }

    #[tokio::test]
    async fn timeout_stops_the_whole_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pidfile = dir.path().join("child.pid");
        let mut spec = spec(
            "sh",
            &[
                "-c",
                "sleep 30 & echo $! > \"$1\"; sleep 30",
                "sh",
                &pidfile.to_string_lossy(),
            ],
        );
        spec.timeout = Duration::from_secs(1);
        let started = Instant::now();
        let outcome = run_to_end(spec).await;
        assert_eq!(outcome.end.status, RunStatus::TimedOut { after_secs: 1 });
        assert!(started.elapsed() < Duration::from_secs(8));
        assert!(outcome.end.duration_ms >= 1000);
        let child = read_pid(&pidfile).await;
        assert!(
            wait_until_dead(child).await,
            "background child {child} survived"
        );
    }

    #[tokio::test]
    async fn a_program_ignoring_sigterm_is_killed() {
        let mut spec = spec("sh", &["-c", "trap '' TERM; echo ready; sleep 30"]);
        spec.timeout = Duration::from_millis(300);
        let started = Instant::now();
        let outcome = run_to_end(spec).await;
        assert_eq!(outcome.end.status, RunStatus::TimedOut { after_secs: 1 });
        assert_eq!(outcome.stdout(), "ready\n");
        assert!(started.elapsed() < STOP_GRACE + Duration::from_secs(5));
    }

    #[tokio::test]
    async fn cancel_stops_the_whole_group() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pidfile = dir.path().join("child.pid");
        let spec = spec(
            "sh",
            &[
                "-c",
                "sleep 30 & echo $! > \"$1\"; sleep 30",
                "sh",
                &pidfile.to_string_lossy(),
            ],
        );
        let (cancel, cancelled) = oneshot::channel::<()>();
        let running = tokio::spawn(run_with(spec, async {
            let _ = cancelled.await;
        }));
        let child = read_pid(&pidfile).await;
        let started = Instant::now();
        cancel.send(()).expect("run is waiting for cancel");
        let outcome = running.await.expect("run task");
        assert_eq!(outcome.end.status, RunStatus::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(8));
        assert!(
            wait_until_dead(child).await,
            "background child {child} survived"
        );
    }

    #[tokio::test]
    async fn children_left_behind_are_stopped_after_the_script_exits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pidfile = dir.path().join("child.pid");
        let started = Instant::now();
        // The child keeps stdout open, so the run would otherwise wait for it.
        let outcome = run_to_end(spec(
            "sh",
            &[
                "-c",
                "sleep 30 & echo $! > \"$1\"; echo done",
                "sh",
                &pidfile.to_string_lossy(),
            ],
        ))
        .await;
        assert_eq!(outcome.end.status, RunStatus::Exited { code: 0 });
        assert_eq!(outcome.stdout(), "done\n");
        assert!(started.elapsed() < LINGER_GRACE + Duration::from_secs(5));
        let child = read_pid(&pidfile).await;
        assert!(
            wait_until_dead(child).await,
            "background child {child} survived"
        );
    }

    #[tokio::test]
    async fn the_guard_kills_the_group_when_the_agent_is_gone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pidfile = dir.path().join("child.pid");
        let spec = spec(
            "sh",
            &[
                "-c",
                "sleep 30 & echo $! > \"$1\"; sleep 30",
                "sh",
                &pidfile.to_string_lossy(),
            ],
        );
        let child = spawn(&spec).expect("spawn");
        let leader = child.id().expect("leader pid") as i32;
        let mut group = Group::new(child);
        group.guard().expect("guard");
        let background = read_pid(&pidfile).await;
        // The agent's end of the pipe closes, as it does when the agent dies.
        drop(group.guard.as_mut().and_then(|g| g.stdin.take()));
        let _ = timeout(Duration::from_secs(5), group.child.wait()).await;
        assert!(
            wait_until_dead(leader).await,
            "the leader {leader} survived"
        );
        assert!(
            wait_until_dead(background).await,
            "background child {background} survived"
        );
        group.stop().await;
    }

    #[tokio::test]
    async fn output_beyond_the_cap_is_counted_not_forwarded() {
        let total: u64 = 50_000_000;
        let cap: u64 = 100_000;
        let mut spec = spec("head", &["-c", &total.to_string(), "/dev/zero"]);
        spec.output_cap = cap;
        let started = Instant::now();
        let outcome = run_to_end(spec).await;
        assert!(started.elapsed() < Duration::from_secs(15));
        assert_eq!(outcome.end.status, RunStatus::Exited { code: 0 });
        assert_eq!(outcome.end.bytes, total);
        assert_eq!(outcome.end.dropped, total - cap);
        let forwarded = outcome.forwarded();
        assert_eq!(forwarded.len() as u64, cap);
        assert_eq!(outcome.end.output_sha256, sha256_hex(&forwarded));
        // One marker, after the last forwarded chunk.
        let markers: Vec<usize> = outcome
            .events
            .iter()
            .enumerate()
            .filter(|(_, event)| matches!(event, RunEvent::Truncated { .. }))
            .map(|(index, _)| index)
            .collect();
        assert_eq!(markers, vec![outcome.events.len() - 1]);
        assert_eq!(outcome.events.last(), Some(&RunEvent::Truncated { cap }));
    }

    #[tokio::test]
    async fn output_of_exactly_the_cap_is_not_truncated() {
        let mut spec = spec("head", &["-c", "1000", "/dev/zero"]);
        spec.output_cap = 1000;
        let outcome = run_to_end(spec).await;
        assert_eq!(outcome.forwarded().len(), 1000);
        assert_eq!(outcome.end.dropped, 0);
        assert!(
            !outcome
                .events
                .iter()
                .any(|event| matches!(event, RunEvent::Truncated { .. }))
        );
    }

    #[tokio::test]
    async fn a_gone_receiver_does_not_stop_the_run() {
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        let end = run(spec("seq", &["1", "100000"]), tx, std::future::pending()).await;
        let expected: usize = (1..=100000).map(|n: u32| n.to_string().len() + 1).sum();
        assert_eq!(end.status, RunStatus::Exited { code: 0 });
        assert_eq!(end.bytes, expected as u64);
    }

    #[tokio::test]
    async fn a_missing_program_fails_to_start_and_is_named() {
        let outcome = run_to_end(spec("resolvectl-not-here", &["flush-caches"])).await;
        assert_eq!(
            outcome.end.status,
            RunStatus::FailedToStart {
                reason: "resolvectl-not-here is not installed on this machine (not found in PATH)"
                    .into()
            }
        );
        assert!(outcome.events.is_empty());
        assert_eq!(outcome.end.bytes, 0);

        let outcome = run_to_end(spec("/nonexistent/fix-it", &[])).await;
        assert_eq!(
            outcome.end.status,
            RunStatus::FailedToStart {
                reason: "/nonexistent/fix-it does not exist on this machine".into()
            }
        );
        assert_eq!(
            outcome.end.status.to_string(),
            "could not start: /nonexistent/fix-it does not exist on this machine"
        );
    }

    #[tokio::test]
    async fn the_environment_is_minimal() {
        let outcome = run_to_end(spec("env", &[])).await;
        let stdout = outcome.stdout();
        let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
        lines.sort_unstable();
        let mut expected = vec![
            format!("LANG={}", platform::LANG),
            format!("PATH={}", platform::SEARCH_PATH),
        ];
        if let Some(home) = std::env::var_os("HOME") {
            expected.push(format!("HOME={}", home.to_string_lossy()));
        }
        expected.sort_unstable();
        assert_eq!(lines, expected);
    }

    #[tokio::test]
    async fn stdin_is_empty_and_the_directory_is_root() {
        let outcome = run_to_end(spec("sh", &["-c", "cat; pwd"])).await;
        assert_eq!(outcome.stdout(), "/\n");
    }
}
