//! How much the folders that commonly fill a disk hold: temporary files,
//! update downloads. The platform names the folders
//! (`crate::platform::diag::folders_to_measure`); the walk is the same
//! everywhere. It is bounded in entries and depth, so a folder with
//! millions of files costs a bounded time and is reported as "at least".

use std::fs;
use std::path::{Path, PathBuf};

use sprijin_proto::message::diag::FolderSize;

/// The label of the person's own temporary files, which a script clears.
pub const USER_TEMP: &str = "your temporary files";

/// The label of the person's own cache, which a script clears.
pub const USER_CACHE: &str = "your cache";

/// Entries (files and folders) one folder's walk looks at, at most.
pub const MAX_ENTRIES_PER_FOLDER: u64 = 200_000;

/// How deep the walk goes below the folder.
pub const MAX_DEPTH: usize = 32;

/// The size of each named folder that exists, largest first. `folders`
/// holds a label for people and the path.
pub fn measure(folders: &[(String, PathBuf)]) -> Vec<FolderSize> {
    let mut out: Vec<FolderSize> = folders
        .iter()
        .filter(|(_, path)| path.is_dir())
        .map(|(label, path)| {
            let mut walk = Walk::default();
            walk.visit(path, 0);
            FolderSize {
                path: path.to_string_lossy().into_owned(),
                label: label.clone(),
                bytes: walk.bytes,
                files: walk.files,
                complete: !walk.cut,
            }
        })
        .collect();
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.path.cmp(&b.path)));
    out
}

#[derive(Default)]
struct Walk {
    entries: u64,
    files: u64,
    bytes: u64,
    cut: bool,
}

impl Walk {
    fn visit(&mut self, dir: &Path, depth: usize) {
        if depth > MAX_DEPTH {
            self.cut = true;
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            if self.entries >= MAX_ENTRIES_PER_FOLDER {
                self.cut = true;
                return;
            }
            self.entries += 1;
            // Links are not followed: their target is counted where it lives.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                self.visit(&entry.path(), depth + 1);
            } else if kind.is_file() {
                self.files = self.files.saturating_add(1);
                let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
                self.bytes = self.bytes.saturating_add(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_summed_below_and_listed_largest_first() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        let big = dir.path().join("big");
        fs::create_dir_all(big.join("deep/er")).unwrap();
        fs::create_dir(&small).unwrap();
        fs::write(small.join("a"), [0u8; 10]).unwrap();
        fs::write(big.join("b"), [0u8; 100]).unwrap();
        fs::write(big.join("deep/er/c"), [0u8; 1000]).unwrap();
        let found = measure(&[
            ("small".into(), small.clone()),
            ("absent".into(), dir.path().join("absent")),
            ("big".into(), big.clone()),
        ]);
        assert_eq!(found.len(), 2, "an absent folder is left out");
        assert_eq!(found[0].label, "big");
        assert_eq!((found[0].bytes, found[0].files), (1100, 2));
        assert!(found[0].complete);
        assert_eq!((found[1].bytes, found[1].files), (10, 1));
    }

    #[test]
    fn a_walk_past_its_bound_says_it_is_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let mut walk = Walk {
            entries: MAX_ENTRIES_PER_FOLDER,
            ..Walk::default()
        };
        fs::write(dir.path().join("x"), [0u8; 1]).unwrap();
        walk.visit(dir.path(), 0);
        assert!(walk.cut);
        assert_eq!(walk.files, 0);
    }
}
