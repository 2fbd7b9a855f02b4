//! How a run starts and stops on Windows: the program starts suspended,
//! goes into a Job Object of the run's own before it runs an instruction
//! (so everything it starts is in the job too), and is then resumed. The
//! job is made with "kill on close" and only the agent holds its handle, so
//! when the agent ends in any way, even killed, Windows closes the handle
//! and ends every process of the run: the counterpart of the process group
//! and its guard on Unix. Stopping a run terminates the job.

use std::process::ExitStatus;
use std::time::Duration;

use sprijin_proto::message::script::RunStatus;
use tokio::process::{Child, Command};
use tokio::time::timeout;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW, CREATE_SUSPENDED, OpenThread, ResumeThread,
    THREAD_SUSPEND_RESUME,
};

use crate::script::runner::STOP_GRACE;

/// The program search path given to every run: the system's own folders,
/// whoever started the agent and whatever their `PATH` holds.
pub const SEARCH_PATH: &str = r"C:\Windows\System32;C:\Windows;C:\Windows\System32\Wbem;C:\Windows\System32\WindowsPowerShell\v1.0";

/// The exit code a run's processes get when the job is terminated.
const STOPPED_EXIT_CODE: u32 = 1;

/// The variables a run keeps from the agent's environment: those Windows
/// programs need to find the system and the user's folders.
const KEPT_VARIABLES: &[&str] = &[
    "SystemRoot",
    "SystemDrive",
    "windir",
    "ComSpec",
    "PATHEXT",
    "TEMP",
    "TMP",
    "USERPROFILE",
    "USERNAME",
    "LOCALAPPDATA",
    "APPDATA",
    "ProgramData",
    "ProgramFiles",
    "NUMBER_OF_PROCESSORS",
    "PROCESSOR_ARCHITECTURE",
];

/// Gives a run's command its environment (the search path and the
/// system's variables), the system drive's root as its folder, no console
/// window of its own, and a suspended start (see [`Group::guard`]).
pub fn prepare_run(command: &mut Command) {
    command.env_clear();
    for name in KEPT_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let root = std::env::var_os("SystemDrive")
        .map(|drive| {
            let mut root = drive;
            root.push("\\");
            root
        })
        .unwrap_or_else(|| r"C:\".into());
    command
        .env("PATH", SEARCH_PATH)
        .current_dir(root)
        .creation_flags(CREATE_NO_WINDOW | CREATE_NEW_PROCESS_GROUP | CREATE_SUSPENDED);
}

/// How a run's program ended: Windows has exit codes only.
pub fn run_status(exit: ExitStatus) -> RunStatus {
    match exit.code() {
        Some(code) => RunStatus::Exited { code },
        None => RunStatus::Unknown {
            reason: "the program's exit code could not be read".to_string(),
        },
    }
}

/// A Job Object handle, closed (and with it every process of the job
/// killed) when dropped.
struct Job(HANDLE);

// SAFETY: a job handle may be used and closed from any thread.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    /// A new job whose processes all die when its last handle closes.
    fn new() -> Result<Job, String> {
        // SAFETY: null attributes and name make an unnamed job with the
        // default security; the handle is checked before use.
        let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if handle.is_null() {
            return Err(format!(
                "the run's job object could not be made: {}",
                std::io::Error::last_os_error()
            ));
        }
        let job = Job(handle);
        // SAFETY: all-zero is a valid JOBOBJECT_EXTENDED_LIMIT_INFORMATION.
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `limits` is the structure this information class expects,
        // with its exact size, and outlives the call.
        let ok = unsafe {
            SetInformationJobObject(
                job.0,
                JobObjectExtendedLimitInformation,
                (&raw const limits).cast(),
                u32::try_from(std::mem::size_of_val(&limits)).unwrap_or(u32::MAX),
            )
        };
        if ok == 0 {
            return Err(format!(
                "the run's job object could not be set to end with the agent: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(job)
    }

    fn assign(&self, child: &Child) -> Result<(), String> {
        let Some(process) = child.raw_handle() else {
            return Err("the run's program ended before it could be guarded".into());
        };
        // SAFETY: both handles are open: the job's is ours, the process's
        // belongs to `child`, which is alive for the call.
        let ok = unsafe { AssignProcessToJobObject(self.0, process as HANDLE) };
        if ok == 0 {
            return Err(format!(
                "the run could not be put in its job object: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }

    fn terminate(&self) {
        // SAFETY: the handle is open until `drop`.
        unsafe {
            TerminateJobObject(self.0, STOPPED_EXIT_CODE);
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: the handle is open and closed only here.
        unsafe {
            CloseHandle(self.0);
        }
    }
}

/// An open handle, closed when dropped.
struct Owned(HANDLE);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: the handle is open and closed only here.
        unsafe {
            CloseHandle(self.0);
        }
    }
}

/// Resumes the threads of the suspended process `pid` (one, for a process
/// started suspended).
fn resume(pid: u32) -> std::io::Result<()> {
    // SAFETY: a snapshot of every thread; the process id is ignored for it.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snapshot == INVALID_HANDLE_VALUE {
        return Err(std::io::Error::last_os_error());
    }
    let snapshot = Owned(snapshot);
    // SAFETY: all-zero is a valid THREADENTRY32; its size is set below.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = u32::try_from(std::mem::size_of::<THREADENTRY32>()).unwrap_or(u32::MAX);
    let mut resumed = 0;
    // SAFETY: the snapshot is open and `entry` has its size set.
    let mut more = unsafe { Thread32First(snapshot.0, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: opening a thread by id has no preconditions; the
            // handle is checked before use.
            let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
            if thread.is_null() {
                return Err(std::io::Error::last_os_error());
            }
            let thread = Owned(thread);
            // SAFETY: the handle was opened with THREAD_SUSPEND_RESUME.
            if unsafe { ResumeThread(thread.0) } == u32::MAX {
                return Err(std::io::Error::last_os_error());
            }
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snapshot.0, &mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(std::io::Error::other("its thread was not found"));
    }
    Ok(())
}

/// The run's program and the job that holds it and all it starts.
pub struct Group {
    pub child: Child,
    job: Option<Job>,
    /// Set once the job has been stopped, so dropping does not again.
    stopped: bool,
}

impl Group {
    pub fn new(child: Child) -> Group {
        Group {
            child,
            job: None,
            stopped: false,
        }
    }

    /// Puts the suspended program in a job of its own that ends with the
    /// agent, then lets it run.
    pub fn guard(&mut self) -> Result<(), String> {
        let job = Job::new()?;
        job.assign(&self.child)?;
        self.job = Some(job);
        let Some(pid) = self.child.id() else {
            return Err("the run's program ended before it could start".into());
        };
        resume(pid).map_err(|e| format!("the run's program could not be started: {e}"))
    }

    /// Ends every process of the run at once (Windows has no signal a
    /// console program can be asked to stop by), and reaps the program.
    pub async fn stop(&mut self) {
        match &self.job {
            Some(job) => job.terminate(),
            None => {
                let _ = self.child.start_kill();
            }
        }
        let _ = timeout(STOP_GRACE + Duration::from_secs(1), self.child.wait()).await;
        self.stopped = true;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // The run was abandoned midway: nothing it started may outlive it.
        if !self.stopped
            && let Some(job) = &self.job
        {
            job.terminate();
        }
        // Dropping the job's handle ends whatever is left too.
    }
}
