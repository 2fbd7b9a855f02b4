//! Which catalog script each kind of finding names, per platform. The
//! signed catalog holds scripts for every platform under distinct ids;
//! a finding names only a script made for the platform the snapshot came
//! from, and names none where that platform's catalog has nothing that
//! fits. A test checks every id here against the committed catalog.

use sprijin_proto::catalog::Platform;

/// The scripts the rules name on one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixes {
    /// Frees space on the system disk (Linux: trims the journal).
    pub free_system_space: Option<&'static str>,
    /// Frees space in the person's own files (Linux: their cache;
    /// Windows: their temporary files).
    pub clear_user_files: Option<&'static str>,
    /// Frees space in the person's own cache, run by the person alone.
    pub clear_own_cache: Option<&'static str>,
    /// Lists the folders taking the most space under a path.
    pub largest_folders: Option<&'static str>,
    /// Counts files per folder, to find what used the inodes.
    pub folders_with_most_files: Option<&'static str>,
    /// Lists the deleted files one process keeps open.
    pub list_deleted_open_files: Option<&'static str>,
    /// Lists what one process has open.
    pub list_open_files: Option<&'static str>,
    /// Ends one process by pid.
    pub stop_process: Option<&'static str>,
    /// Checks reachability of a host.
    pub test_connectivity: Option<&'static str>,
    /// Asks for an address (and its gateway) again.
    pub renew_address: Option<&'static str>,
    /// Clears cached name lookups.
    pub flush_dns: Option<&'static str>,
    /// Restarts a failed service.
    pub restart_service: Option<&'static str>,
    /// Starts a stopped service.
    pub start_service: Option<&'static str>,
    /// Brings the clock back in line with a time server.
    pub sync_time: Option<&'static str>,
    /// Restarts the computer, with warning time.
    pub restart_computer: Option<&'static str>,
    /// Finishes an installation the package manager left half done.
    pub finish_install: Option<&'static str>,
}

const NONE: Fixes = Fixes {
    free_system_space: None,
    clear_user_files: None,
    clear_own_cache: None,
    largest_folders: None,
    folders_with_most_files: None,
    list_deleted_open_files: None,
    list_open_files: None,
    stop_process: None,
    test_connectivity: None,
    renew_address: None,
    flush_dns: None,
    restart_service: None,
    start_service: None,
    sync_time: None,
    restart_computer: None,
    finish_install: None,
};

/// Linux's scripts in the sample catalog.
pub const LINUX: Fixes = Fixes {
    free_system_space: Some("journal-vacuum"),
    clear_user_files: Some("clear-user-cache"),
    clear_own_cache: Some("clear-my-cache"),
    largest_folders: Some("largest-folders"),
    folders_with_most_files: Some("folders-with-most-files"),
    list_deleted_open_files: Some("list-deleted-open-files"),
    list_open_files: Some("list-open-files"),
    stop_process: Some("stop-process"),
    test_connectivity: Some("test-connectivity"),
    // Linux renews through its network manager, which has no one command.
    renew_address: Some("test-connectivity"),
    flush_dns: Some("flush-dns"),
    restart_service: Some("restart-unit"),
    start_service: Some("restart-unit"),
    sync_time: Some("turn-on-time-sync"),
    restart_computer: None,
    finish_install: Some("dpkg-configure"),
};

/// Windows' scripts in the sample catalog.
pub const WINDOWS: Fixes = Fixes {
    free_system_space: Some("windows-clear-temp"),
    clear_user_files: Some("windows-clear-temp"),
    clear_own_cache: None,
    largest_folders: Some("windows-largest-folders"),
    folders_with_most_files: Some("windows-largest-folders"),
    list_deleted_open_files: None,
    list_open_files: None,
    stop_process: Some("windows-stop-process"),
    test_connectivity: Some("windows-test-connectivity"),
    renew_address: Some("windows-renew-address"),
    flush_dns: Some("windows-flush-dns"),
    restart_service: Some("windows-start-service"),
    start_service: Some("windows-start-service"),
    sync_time: Some("windows-sync-time"),
    restart_computer: Some("windows-restart-computer"),
    finish_install: None,
};

/// The sample catalog has no macOS scripts yet: findings name none.
pub const MACOS: Fixes = NONE;

/// The scripts for `platform`.
pub fn for_platform(platform: Platform) -> &'static Fixes {
    match platform {
        Platform::Linux => &LINUX,
        Platform::Windows => &WINDOWS,
        Platform::Macos => &MACOS,
    }
}

/// The platform this agent runs on; Linux's names where the build knows
/// none (the catalog format has no other).
pub fn this_platform() -> Platform {
    Platform::current().unwrap_or(Platform::Linux)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::catalog::Script;

    fn catalog() -> Vec<Script> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog");
        let mut scripts = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&path).unwrap();
                scripts.push(Script::from_toml(&name, &text).unwrap());
            }
        }
        scripts
    }

    fn ids(f: &Fixes) -> Vec<&'static str> {
        let Fixes {
            free_system_space,
            clear_user_files,
            clear_own_cache,
            largest_folders,
            folders_with_most_files,
            list_deleted_open_files,
            list_open_files,
            stop_process,
            test_connectivity,
            renew_address,
            flush_dns,
            restart_service,
            start_service,
            sync_time,
            restart_computer,
            finish_install,
        } = f;
        [
            free_system_space,
            clear_user_files,
            clear_own_cache,
            largest_folders,
            folders_with_most_files,
            list_deleted_open_files,
            list_open_files,
            stop_process,
            test_connectivity,
            renew_address,
            flush_dns,
            restart_service,
            start_service,
            sync_time,
            restart_computer,
            finish_install,
        ]
        .into_iter()
        .filter_map(|id| *id)
        .collect()
    }

    #[test]
    fn every_named_script_is_in_the_catalog_for_its_platform() {
        let catalog = catalog();
        for platform in [Platform::Linux, Platform::Windows, Platform::Macos] {
            for id in ids(for_platform(platform)) {
                let script = catalog
                    .iter()
                    .find(|s| s.id.as_str() == id)
                    .unwrap_or_else(|| panic!("{id} is not in the catalog"));
                assert!(
                    script.runs_on(platform),
                    "{id} is named on {platform} but not made for it"
                );
            }
        }
    }

    #[test]
    fn windows_findings_name_windows_scripts_only() {
        let catalog = catalog();
        let windows = ids(&WINDOWS);
        assert!(windows.len() >= 8, "{windows:?}");
        for id in windows {
            let script = catalog.iter().find(|s| s.id.as_str() == id).unwrap();
            assert!(!script.runs_on(Platform::Linux), "{id}");
        }
    }
}
