//! A pending restart, from the registry marks Windows leaves: Component
//! Based Servicing's `RebootPending` key, Windows Update's
//! `RebootRequired` key, and Session Manager's
//! `PendingFileRenameOperations` value (files to replace at the next
//! start).

/// Where each mark lives, under `HKEY_LOCAL_MACHINE`.
pub const CBS_REBOOT_PENDING: &str =
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending";
pub const WU_REBOOT_REQUIRED: &str =
    r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired";
pub const SESSION_MANAGER: &str = r"SYSTEM\CurrentControlSet\Control\Session Manager";
pub const PENDING_FILE_RENAMES: &str = "PendingFileRenameOperations";

/// What the registry said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RebootMarks {
    /// Whether the Component Based Servicing key exists.
    pub servicing: bool,
    /// Whether the Windows Update key exists.
    pub windows_update: bool,
    /// The `PendingFileRenameOperations` value as read (`REG_MULTI_SZ`,
    /// UTF-16 units), `None` when it does not exist.
    pub file_renames: Option<Vec<u16>>,
}

/// Why a restart is pending, for people; empty when none is.
pub fn reasons(marks: &RebootMarks) -> Vec<String> {
    let mut out = Vec::new();
    if marks.servicing {
        out.push("Windows servicing (updates or features being installed)".to_string());
    }
    if marks.windows_update {
        out.push("Windows Update".to_string());
    }
    if let Some(renames) = &marks.file_renames {
        let n = multi_sz(renames).len();
        // Entries come in pairs: the file, then its new name (or nothing,
        // to delete it).
        if n > 0 {
            out.push(format!(
                "{} file(s) to replace at the next start",
                n.div_ceil(2)
            ));
        }
    }
    out
}

/// The strings of a `REG_MULTI_SZ` value: separated by NUL, ended by two.
/// Empty strings (the deletions' empty new names) are kept out.
pub fn multi_sz(units: &[u16]) -> Vec<String> {
    units
        .split(|&u| u == 0)
        .filter(|s| !s.is_empty())
        .map(String::from_utf16_lossy)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn no_marks_no_restart() {
        assert!(reasons(&RebootMarks::default()).is_empty());
        // The value exists but is empty (two NULs): nothing to replace.
        let empty = RebootMarks {
            file_renames: Some(vec![0, 0]),
            ..RebootMarks::default()
        };
        assert!(reasons(&empty).is_empty());
    }

    #[test]
    fn each_mark_is_a_reason() {
        // As recorded after an update replaced a driver in use: a rename
        // (source, target) and a deletion (source, empty).
        let renames = utf16(
            "\\??\\C:\\Windows\\System32\\drivers\\x.sys.new\0!\\??\\C:\\Windows\\System32\\drivers\\x.sys\0\\??\\C:\\Temp\\old.dll\0\0\0",
        );
        let marks = RebootMarks {
            servicing: true,
            windows_update: true,
            file_renames: Some(renames),
        };
        let r = reasons(&marks);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[0].starts_with("Windows servicing"));
        assert_eq!(r[1], "Windows Update");
        assert_eq!(r[2], "2 file(s) to replace at the next start");
    }

    #[test]
    fn multi_sz_splits_on_nul_and_skips_empties() {
        assert_eq!(multi_sz(&utf16("a\0bc\0\0")), ["a", "bc"]);
        assert!(multi_sz(&[]).is_empty());
        // A value without its terminating NULs still reads.
        assert_eq!(multi_sz(&utf16("a")), ["a"]);
    }
}
