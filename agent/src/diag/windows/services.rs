//! Automatic services that are stopped, from what the Service Control
//! Manager lists (`EnumServicesStatusExW`) and each service's start type
//! (`QueryServiceConfigW`).
//!
//! Many automatic services stop by design once their work is done, with
//! exit code 0. So a stopped automatic service is named when it stopped
//! with an error, or when it is one the desktop cannot do without
//! (printing, addresses, names, the event log, the firewall).

use sprijin_proto::message::diag::StoppedService;

/// `SERVICE_STOPPED` in `SERVICE_STATUS_PROCESS::dwCurrentState`.
pub const SERVICE_STOPPED: u32 = 1;

/// `SERVICE_AUTO_START` in `QUERY_SERVICE_CONFIGW::dwStartType`.
pub const SERVICE_AUTO_START: u32 = 2;

/// `ERROR_SERVICE_SPECIFIC_ERROR`: the real code is the service's own.
pub const ERROR_SERVICE_SPECIFIC_ERROR: u32 = 1066;

/// How many stopped services a snapshot lists at most.
pub const MAX_STOPPED: usize = 20;

/// Services that must run on a working desktop, by key name (compared
/// without case): stopped, they are named even after a clean exit.
pub const ESSENTIAL: &[&str] = &[
    "AudioSrv",
    "BFE",
    "Dhcp",
    "Dnscache",
    "EventLog",
    "LanmanWorkstation",
    "mpssvc",
    "nsi",
    "Spooler",
    "Winmgmt",
];

/// One service as the Service Control Manager described it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceRecord {
    pub name: String,
    pub display_name: String,
    /// `dwCurrentState`.
    pub state: u32,
    /// `dwStartType`; `None` when the configuration could not be read.
    pub start_type: Option<u32>,
    /// `dwWin32ExitCode`.
    pub win32_exit_code: u32,
    /// `dwServiceSpecificExitCode`, meaningful when the Win32 code is
    /// [`ERROR_SERVICE_SPECIFIC_ERROR`].
    pub service_exit_code: u32,
}

impl ServiceRecord {
    fn exit_code(&self) -> u32 {
        if self.win32_exit_code == ERROR_SERVICE_SPECIFIC_ERROR {
            self.service_exit_code
        } else {
            self.win32_exit_code
        }
    }
}

/// The automatic services that are stopped and should not be, sorted by
/// name, at most [`MAX_STOPPED`].
pub fn stopped_automatic(records: &[ServiceRecord]) -> Vec<StoppedService> {
    let mut out: Vec<StoppedService> = records
        .iter()
        .filter(|r| r.state == SERVICE_STOPPED && r.start_type == Some(SERVICE_AUTO_START))
        .filter(|r| r.exit_code() != 0 || ESSENTIAL.iter().any(|e| e.eq_ignore_ascii_case(&r.name)))
        .map(|r| StoppedService {
            name: r.name.clone(),
            display_name: r.display_name.clone(),
            exit_code: r.exit_code(),
        })
        .collect();
    out.sort_by_key(|a| a.name.to_lowercase());
    out.truncate(MAX_STOPPED);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE_RUNNING: u32 = 4;
    const SERVICE_DEMAND_START: u32 = 3;

    fn record(name: &str, state: u32, start: u32, exit: u32) -> ServiceRecord {
        ServiceRecord {
            name: name.into(),
            display_name: format!("{name} service"),
            state,
            start_type: Some(start),
            win32_exit_code: exit,
            service_exit_code: 0,
        }
    }

    /// As recorded from a Windows 10 desktop whose print spooler crashed.
    fn recorded() -> Vec<ServiceRecord> {
        vec![
            record("Dnscache", SERVICE_RUNNING, SERVICE_AUTO_START, 0),
            // Stops itself after its work: automatic, stopped, exit 0.
            record("sppsvc", SERVICE_STOPPED, SERVICE_AUTO_START, 0),
            // Crashed: "the process terminated unexpectedly".
            record("Spooler", SERVICE_STOPPED, SERVICE_AUTO_START, 1067),
            // Manual services are none of our business.
            record("wuauserv", SERVICE_STOPPED, SERVICE_DEMAND_START, 0),
            ServiceRecord {
                win32_exit_code: ERROR_SERVICE_SPECIFIC_ERROR,
                service_exit_code: 7,
                ..record("AcmeBackup", SERVICE_STOPPED, SERVICE_AUTO_START, 0)
            },
            // Its configuration could not be read: not guessed at.
            ServiceRecord {
                start_type: None,
                ..record("Odd", SERVICE_STOPPED, 0, 5)
            },
        ]
    }

    #[test]
    fn stopped_automatic_services_with_errors_are_named() {
        let found = stopped_automatic(&recorded());
        let names: Vec<&str> = found.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["AcmeBackup", "Spooler"]);
        assert_eq!(found[0].exit_code, 7, "the service's own code");
        assert_eq!(found[1].exit_code, 1067);
        assert_eq!(found[1].display_name, "Spooler service");
    }

    #[test]
    fn an_essential_service_is_named_even_after_a_clean_stop() {
        let found = stopped_automatic(&[record("dhcp", SERVICE_STOPPED, SERVICE_AUTO_START, 0)]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].exit_code, 0);
    }

    #[test]
    fn the_list_is_bounded() {
        let many: Vec<ServiceRecord> = (0..100)
            .map(|i| record(&format!("s{i:03}"), SERVICE_STOPPED, SERVICE_AUTO_START, 1))
            .collect();
        assert_eq!(stopped_automatic(&many).len(), MAX_STOPPED);
    }
}
