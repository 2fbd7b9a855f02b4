//! The Service Control Manager: every Win32 service with its state
//! (`EnumServicesStatusExW`), and the start type of those that are stopped
//! (`QueryServiceConfigW`).

use std::ptr::null;

use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, ERROR_MORE_DATA, GetLastError};
use windows_sys::Win32::System::Services::{
    CloseServiceHandle, ENUM_SERVICE_STATUS_PROCESSW, EnumServicesStatusExW, OpenSCManagerW,
    OpenServiceW, QUERY_SERVICE_CONFIGW, QueryServiceConfigW, SC_ENUM_PROCESS_INFO, SC_HANDLE,
    SC_MANAGER_CONNECT, SC_MANAGER_ENUMERATE_SERVICE, SERVICE_QUERY_CONFIG, SERVICE_STATE_ALL,
    SERVICE_WIN32,
};

use super::diag::{from_wide_ptr, wide};
use crate::diag::windows::services::{SERVICE_STOPPED, ServiceRecord};

/// Largest buffer asked for one answer: a machine has a few hundred
/// services, a few hundred bytes each.
const MAX_BUFFER_BYTES: usize = 4 << 20;

/// How many times the list is asked for when it grows in between.
const ATTEMPTS: usize = 4;

/// Closes a service handle when dropped.
struct Handle(SC_HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a handle the manager gave and nobody else closes.
            unsafe { CloseServiceHandle(self.0) };
        }
    }
}

/// Every Win32 service; `None` when the manager cannot be asked.
pub fn records() -> Option<Vec<ServiceRecord>> {
    // SAFETY: null names mean this machine's active database.
    let scm = Handle(unsafe {
        OpenSCManagerW(
            null(),
            null(),
            SC_MANAGER_CONNECT | SC_MANAGER_ENUMERATE_SERVICE,
        )
    });
    if scm.0.is_null() {
        return None;
    }
    // u64 units keep the records the answer holds aligned.
    let mut buf: Vec<u64> = Vec::new();
    let mut returned = 0u32;
    let mut ok = false;
    for _ in 0..ATTEMPTS {
        let mut needed = 0u32;
        let mut resume = 0u32;
        let bytes = u32::try_from(buf.len() * 8).ok()?;
        // SAFETY: the buffer is writable for `bytes` bytes; the counters
        // are valid for the call.
        let done = unsafe {
            EnumServicesStatusExW(
                scm.0,
                SC_ENUM_PROCESS_INFO,
                SERVICE_WIN32,
                SERVICE_STATE_ALL,
                buf.as_mut_ptr().cast(),
                bytes,
                &mut needed,
                &mut returned,
                &mut resume,
                null(),
            )
        };
        if done != 0 {
            ok = true;
            break;
        }
        // SAFETY: reads this thread's last error; no memory involved.
        let error = unsafe { GetLastError() };
        let needed = needed as usize;
        if error != ERROR_MORE_DATA || needed > MAX_BUFFER_BYTES {
            return None;
        }
        buf = vec![0; needed.div_ceil(8) + 1];
    }
    if !ok {
        return None;
    }
    let size = std::mem::size_of::<ENUM_SERVICE_STATUS_PROCESSW>();
    let count = (returned as usize).min(buf.len() * 8 / size);
    // SAFETY: the manager wrote `returned` records at the start of the
    // aligned buffer, and `count` is no more than fit in it.
    let entries = unsafe {
        std::slice::from_raw_parts(buf.as_ptr().cast::<ENUM_SERVICE_STATUS_PROCESSW>(), count)
    };
    let records = entries
        .iter()
        .map(|e| {
            let status = &e.ServiceStatusProcess;
            // SAFETY: the names point into the buffer, NUL-terminated.
            let name = unsafe { from_wide_ptr(e.lpServiceName) };
            // SAFETY: as above.
            let display_name = unsafe { from_wide_ptr(e.lpDisplayName) };
            // Only a stopped service's start type matters; asking for every
            // one would cost a call each.
            let start_type = if status.dwCurrentState == SERVICE_STOPPED {
                start_type(&scm, &name)
            } else {
                None
            };
            ServiceRecord {
                name,
                display_name,
                state: status.dwCurrentState,
                start_type,
                win32_exit_code: status.dwWin32ExitCode,
                service_exit_code: status.dwServiceSpecificExitCode,
            }
        })
        .collect();
    Some(records)
}

/// A service's start type; `None` when it cannot be read.
fn start_type(scm: &Handle, name: &str) -> Option<u32> {
    let wname = wide(name);
    // SAFETY: an open manager handle and a NUL-terminated name.
    let service = Handle(unsafe { OpenServiceW(scm.0, wname.as_ptr(), SERVICE_QUERY_CONFIG) });
    if service.0.is_null() {
        return None;
    }
    let mut needed = 0u32;
    // SAFETY: asks only for the size: no buffer, length 0.
    let sized = unsafe { QueryServiceConfigW(service.0, std::ptr::null_mut(), 0, &mut needed) };
    // SAFETY: reads this thread's last error.
    if sized != 0 || unsafe { GetLastError() } != ERROR_INSUFFICIENT_BUFFER {
        return None;
    }
    let size = needed as usize;
    if size < std::mem::size_of::<QUERY_SERVICE_CONFIGW>() || size > MAX_BUFFER_BYTES {
        return None;
    }
    let mut buf: Vec<u64> = vec![0; size.div_ceil(8)];
    let bytes = u32::try_from(buf.len() * 8).ok()?;
    // SAFETY: an aligned buffer, writable for `bytes` bytes, at least the
    // size the manager asked for.
    let ok = unsafe {
        QueryServiceConfigW(
            service.0,
            buf.as_mut_ptr().cast::<QUERY_SERVICE_CONFIGW>(),
            bytes,
            &mut needed,
        )
    };
    if ok == 0 {
        return None;
    }
    // SAFETY: the manager wrote a configuration at the buffer's start.
    let config = unsafe { &*buf.as_ptr().cast::<QUERY_SERVICE_CONFIGW>() };
    Some(config.dwStartType)
}
