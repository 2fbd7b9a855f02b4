//! `GetSystemTimes`: idle, kernel and user time of all cores together.

use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::System::Threading::GetSystemTimes;

use crate::diag::windows::cpu::{SystemTimes, filetime};

/// The counters now; `None` when Windows refuses them.
pub fn system_times() -> Option<SystemTimes> {
    let mut idle = FILETIME::default();
    let mut kernel = FILETIME::default();
    let mut user = FILETIME::default();
    // SAFETY: three valid, writable FILETIMEs that outlive the call.
    let ok = unsafe { GetSystemTimes(&mut idle, &mut kernel, &mut user) };
    if ok == 0 {
        return None;
    }
    let t = |f: FILETIME| filetime(f.dwLowDateTime, f.dwHighDateTime);
    Some(SystemTimes {
        idle: t(idle),
        kernel: t(kernel),
        user: t(user),
    })
}
