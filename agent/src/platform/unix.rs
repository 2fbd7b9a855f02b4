//! What Linux and macOS do the same way.

/// Diagnostics sources Linux and macOS share: file system inodes and the
/// resolvers of `/etc/resolv.conf`.
pub mod diag {
    use std::path::Path;

    /// Where the C library reads its resolvers from.
    pub const RESOLV_CONF: &str = "/etc/resolv.conf";

    /// Total and free inodes of the file system at `mount_point`; zeros
    /// when it cannot be asked or does not count them.
    // The counts are 32 bits wide on some targets, so the conversion is kept.
    #[allow(clippy::useless_conversion)]
    pub fn inodes(mount_point: &Path) -> (u64, u64) {
        match nix::sys::statvfs::statvfs(mount_point) {
            Ok(st) => {
                let total = u64::from(st.files());
                (total, u64::from(st.files_available()).min(total))
            }
            Err(_) => (0, 0),
        }
    }

    /// The `nameserver` addresses of a resolv.conf, in order.
    pub fn resolvers(path: &Path) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Vec::new();
        };
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                (f.next()? == "nameserver").then(|| f.next().map(str::to_string))?
            })
            .collect()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn nameservers_are_read_in_order() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("resolv.conf");
            std::fs::write(
                &path,
                "# comment\nsearch lan\nnameserver 10.0.0.1\nnameserver ::1\noptions edns0\nnameserver 1.1.1.1\n",
            )
            .unwrap();
            assert_eq!(resolvers(&path), ["10.0.0.1", "::1", "1.1.1.1"]);
            assert!(resolvers(&dir.path().join("absent")).is_empty());
        }

        #[test]
        fn the_root_file_system_counts_inodes_or_says_zero() {
            let (total, free) = inodes(Path::new("/"));
            assert!(free <= total);
        }
    }
}
