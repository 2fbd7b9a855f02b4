//! The registry's marks of a pending restart (see
//! `crate::diag::windows::reboot` for which and why).

use std::ptr::null_mut;

use windows_sys::Win32::Foundation::ERROR_SUCCESS;
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_64KEY, RRF_RT_REG_MULTI_SZ, RegCloseKey,
    RegGetValueW, RegOpenKeyExW,
};

use super::diag::wide;
use crate::diag::windows::reboot::{
    CBS_REBOOT_PENDING, PENDING_FILE_RENAMES, RebootMarks, SESSION_MANAGER, WU_REBOOT_REQUIRED,
};

/// Largest value read: the rename list of a big update is a few KiB.
const MAX_VALUE_BYTES: u32 = 1 << 20;

/// What the registry says now. A key that cannot be opened counts as
/// absent: the marks are only ever added, never needed to be absent.
pub fn reboot_marks() -> RebootMarks {
    RebootMarks {
        servicing: key_exists(CBS_REBOOT_PENDING),
        windows_update: key_exists(WU_REBOOT_REQUIRED),
        file_renames: multi_sz_value(SESSION_MANAGER, PENDING_FILE_RENAMES),
    }
}

fn key_exists(path: &str) -> bool {
    let wpath = wide(path);
    let mut key: HKEY = null_mut();
    // SAFETY: a NUL-terminated path and a valid place for the key.
    let opened = unsafe {
        RegOpenKeyExW(
            HKEY_LOCAL_MACHINE,
            wpath.as_ptr(),
            0,
            KEY_READ | KEY_WOW64_64KEY,
            &mut key,
        )
    };
    if opened != ERROR_SUCCESS {
        return false;
    }
    // SAFETY: the key was just opened here and is closed once.
    unsafe { RegCloseKey(key) };
    true
}

/// A `REG_MULTI_SZ` value's UTF-16 units; `None` when it does not exist
/// or cannot be read.
fn multi_sz_value(path: &str, name: &str) -> Option<Vec<u16>> {
    let wpath = wide(path);
    let wname = wide(name);
    let mut bytes = 0u32;
    // SAFETY: NUL-terminated names; no buffer, so only the size is written.
    let sized = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            wpath.as_ptr(),
            wname.as_ptr(),
            RRF_RT_REG_MULTI_SZ,
            null_mut(),
            null_mut(),
            &mut bytes,
        )
    };
    if sized != ERROR_SUCCESS || bytes > MAX_VALUE_BYTES {
        return None;
    }
    let mut units: Vec<u16> = vec![0; (bytes as usize).div_ceil(2)];
    let mut len = u32::try_from(units.len() * 2).ok()?;
    // SAFETY: the buffer is writable for `len` bytes.
    let read = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            wpath.as_ptr(),
            wname.as_ptr(),
            RRF_RT_REG_MULTI_SZ,
            null_mut(),
            units.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if read != ERROR_SUCCESS {
        return None;
    }
    units.truncate((len as usize / 2).min(units.len()));
    Some(units)
}
