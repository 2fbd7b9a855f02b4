//! Room for the log on its disk. Before the agent shows a code, and before
//! it asks the person about a run, it checks that the disk holding the log
//! has [`ROOM`] free, so a full disk is a clear error then rather than a
//! record that fails to be written after the person said yes. It also sets
//! that much aside past the log's end, so the records that follow (a run's
//! end, when the script itself filled the disk) still find room.

use std::fs::File;
use std::path::Path;

use super::chain::io_error;
use super::damage::AuditError;
use crate::platform;

/// Free space the log needs ahead of it: the records of a run (its
/// question, start and end) many times over.
pub const ROOM: u64 = 64 * 1024;

/// Checks that the disk holding `file` has [`ROOM`] free and sets it aside.
pub(super) fn ensure(file: &File, path: &Path) -> Result<(), AuditError> {
    let free =
        platform::free_space(file, path).map_err(io_error("check the free space of", path))?;
    let no_room = |free| AuditError::NoRoom {
        path: path.to_owned(),
        free,
        needed: ROOM,
    };
    if free < ROOM {
        return Err(no_room(free));
    }
    let len = file
        .metadata()
        .map_err(io_error("check the size of", path))?
        .len();
    match platform::set_aside(file, len, ROOM) {
        // Not every file system can set room aside; the free space is checked.
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            Err(no_room(free))
        }
        Err(e) => Err(io_error("set room aside for", path)(e)),
    }
}
