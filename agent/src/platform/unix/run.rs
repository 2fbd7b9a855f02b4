//! How a run starts and stops on Linux and macOS: the process group it
//! lives in, and its guard. Signals go to the whole group, so nothing a
//! script started outlives the run or the agent.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout, timeout_at};

use sprijin_proto::message::script::RunStatus;

use crate::script::runner::STOP_GRACE;

/// The program search path given to every run; the agent's own `PATH` is
/// not passed on, so a run finds the same programs whoever started the agent.
pub const SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The locale given to every run: UTF-8 output, untranslated messages.
pub const LANG: &str = "C.UTF-8";

/// Gives a run's command its environment (only [`SEARCH_PATH`], [`LANG`]
/// and the user's home), the root as its folder, and a process group of
/// its own, led by the program.
pub fn prepare_run(command: &mut Command) {
    command
        .env_clear()
        .env("PATH", SEARCH_PATH)
        .env("LANG", LANG)
        .current_dir("/")
        .process_group(0);
    if let Some(home) = std::env::var_os("HOME") {
        command.env("HOME", home);
    }
}

/// How a run's program ended, as the technician and the log say it.
pub fn run_status(exit: ExitStatus) -> RunStatus {
    match (exit.code(), exit.signal()) {
        (Some(code), _) => RunStatus::Exited { code },
        (None, Some(signal)) => RunStatus::Signalled { signal },
        // wait() reports only exits and deaths by signal; keep the raw value
        // visible rather than invent one should that ever change.
        (None, None) => RunStatus::Unknown {
            reason: format!("raw wait status {}", exit.into_raw()),
        },
    }
}

/// The shell the run's guard is written in (see [`Group::guard`]).
const GUARD_SHELL: &str = "/bin/sh";

/// The guard: waits for its standard input to end, then kills the process
/// group named by its first argument. Signals a terminal or a hangup would
/// send are ignored, so only the end of its input or SIGKILL stops it.
const GUARD_SCRIPT: &str = "trap '' INT HUP TERM QUIT; read _; kill -s KILL -- \"-$1\"";

/// How often a stopped group is checked for survivors during [`STOP_GRACE`].
const GROUP_POLL: Duration = Duration::from_millis(20);

/// The run's process group, led by the program itself.
///
/// Signals go to the group, so children and grandchildren the script started
/// are stopped with it. The group id is the leader's pid. After the leader
/// has been reaped the kernel keeps that number reserved while any member
/// lives; only an empty group's number could be handed to someone else, and
/// since pids are given out in increasing order that would take the pid
/// space wrapping around in the seconds between the reap and [`Group::stop`].
pub struct Group {
    pub child: Child,
    pgid: Option<Pid>,
    /// Kills the group should the agent die without stopping it.
    pub guard: Option<Child>,
    /// Set once the group has been stopped, so dropping does not signal.
    stopped: bool,
}

impl Group {
    pub fn new(child: Child) -> Group {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        Group {
            child,
            pgid,
            guard: None,
            stopped: false,
        }
    }

    /// Starts the group's guard: a small process, outside the group, that
    /// reads a pipe only this agent writes to. When the agent ends in any
    /// way, even SIGKILL, the kernel closes the pipe, the guard's read ends
    /// and it kills the whole group, so no run outlives its agent. When the
    /// run ends normally the agent stops the group itself and then kills
    /// the guard. (A parent-death signal would reach only the group's
    /// leader, not what the script started, and fires when the spawning
    /// thread ends rather than the agent.)
    pub fn guard(&mut self) -> Result<(), String> {
        let Some(pgid) = self.pgid else {
            return Err("the run's process group is unknown, so it could not be guarded".into());
        };
        let guard = Command::new(GUARD_SHELL)
            .args(["-c", GUARD_SCRIPT, "sprijin-run-guard", &pgid.to_string()])
            .env_clear()
            .env("PATH", SEARCH_PATH)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("the run's guard ({GUARD_SHELL}) could not be started: {e}"))?;
        self.guard = Some(guard);
        Ok(())
    }

    /// Kills the guard (the group is already stopped) and reaps it.
    pub async fn end_guard(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            let _ = guard.start_kill();
            let _ = timeout(STOP_GRACE, guard.wait()).await;
        }
    }

    /// Sends `signal` (or only checks, with `None`) to the group and says
    /// whether any member is left to receive it.
    pub fn signal(&mut self, signal: Option<Signal>) -> bool {
        let Some(pgid) = self.pgid else {
            // Without a group id only the leader can be reached.
            if signal.is_some() {
                let _ = self.child.start_kill();
            }
            return false;
        };
        match killpg(pgid, signal) {
            Ok(()) => true,
            Err(Errno::ESRCH) => false,
            // EPERM: members exist but changed identity (setuid); they are
            // alive, though out of reach.
            Err(_) => true,
        }
    }

    /// SIGTERM to the group, SIGKILL after [`STOP_GRACE`] to whatever is
    /// left, and the leader reaped if it was still running.
    pub async fn stop(&mut self) {
        if self.signal(Some(Signal::SIGTERM)) {
            let deadline = Instant::now() + STOP_GRACE;
            let _ = timeout_at(deadline, self.child.wait()).await;
            // An unreaped leader keeps the group alive in the kernel's eyes,
            // so only after the wait above does an empty group mean all gone.
            while self.signal(None) && Instant::now() < deadline {
                sleep(GROUP_POLL).await;
            }
            if self.signal(None) {
                self.signal(Some(Signal::SIGKILL));
            }
        }
        // SIGKILL cannot be ignored, but a process stuck in the kernel can
        // delay its death; give up waiting rather than hang the run.
        let _ = timeout(STOP_GRACE, self.child.wait()).await;
        self.stopped = true;
        self.end_guard().await;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The run was abandoned midway: nothing it started may outlive it.
        if !self.stopped {
            self.signal(Some(Signal::SIGKILL));
        }
        // The guard (if still there) is killed by `kill_on_drop`.
    }
}
