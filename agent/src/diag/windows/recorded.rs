//! Windows findings end to end on recorded inputs: what Windows' APIs
//! returned on machines with each fault, through the pure functions of
//! this module, into a snapshot, through the rules. Wine cannot make these
//! faults real, so they are proven here, on every system.

use std::net::IpAddr;

use sprijin_proto::message::diag::{
    Finding, NameResolution, NetworkInterface, ResolutionOutcome, Services, Snapshot,
};

use super::cpu::{SystemTimes, busy_percent};
use super::network::{Adapter, IF_TYPE_SOFTWARE_LOOPBACK, RouteRow, default_routes, resolvers};
use super::reboot::{RebootMarks, reasons};
use super::services::{SERVICE_AUTO_START, SERVICE_STOPPED, ServiceRecord, stopped_automatic};
use crate::diag::findings::evaluate;
use crate::diag::findings::testing::{GIB, MIB, process, quiet, windows};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A Windows 10 desktop, healthy, as its APIs described it.
fn desktop() -> Snapshot {
    let mut s = quiet();
    s.host.os_name = "Windows".into();
    s.host.kernel = "19045".into();
    s.cpu.load_average = Default::default();
    s.cpu.per_core_percent.clear();
    s.networks = vec![
        NetworkInterface {
            name: "Loopback Pseudo-Interface 1".into(),
            addresses: vec!["127.0.0.1/8".into(), "::1/128".into()],
            ..NetworkInterface::default()
        },
        NetworkInterface {
            name: "Ethernet".into(),
            addresses: vec![
                "192.168.1.20/24".into(),
                "fe80::1c2d:3e4f:5a6b:7c8d/64".into(),
            ],
            mac: "52:54:00:12:34:56".into(),
            packets_in: 1_000_000,
            packets_out: 800_000,
            ..NetworkInterface::default()
        },
    ];
    s.routes = Some(default_routes(
        &[RouteRow {
            destination: ip("0.0.0.0"),
            prefix_len: 0,
            next_hop: ip("192.168.1.1"),
            interface_index: 7,
        }],
        &adapters(),
    ));
    s.services = Some(Services {
        stopped_automatic: stopped_automatic(&[]),
        ..Services::default()
    });
    s.pending_reboot = Some(reasons(&RebootMarks::default()));
    s.clock_synchronized = None;
    s
}

fn adapters() -> Vec<Adapter> {
    vec![
        Adapter {
            index: 1,
            name: "Loopback Pseudo-Interface 1".into(),
            if_type: IF_TYPE_SOFTWARE_LOOPBACK,
            up: true,
            dns_servers: vec![],
        },
        Adapter {
            index: 7,
            name: "Ethernet".into(),
            if_type: 6,
            up: true,
            dns_servers: vec![ip("192.168.1.1"), ip("fec0:0:0:ffff::1")],
        },
    ]
}

fn findings(s: &Snapshot) -> Vec<Finding> {
    evaluate(s, &windows())
}

fn one(s: &Snapshot, id: &str) -> Finding {
    let all = findings(s);
    let mut named: Vec<Finding> = all.iter().filter(|f| f.id == id).cloned().collect();
    assert_eq!(named.len(), 1, "expected one {id} in {all:#?}");
    named.remove(0)
}

#[test]
fn a_healthy_windows_desktop_has_no_findings() {
    assert_eq!(findings(&desktop()), vec![]);
}

#[test]
fn a_crashed_spooler_is_a_stopped_service_to_start() {
    let mut s = desktop();
    let spooler = ServiceRecord {
        name: "Spooler".into(),
        display_name: "Print Spooler".into(),
        state: SERVICE_STOPPED,
        start_type: Some(SERVICE_AUTO_START),
        win32_exit_code: 1067,
        service_exit_code: 0,
    };
    s.services = Some(Services {
        stopped_automatic: stopped_automatic(&[spooler]),
        ..Services::default()
    });
    let f = one(&s, "service-stopped");
    assert_eq!(f.subject.as_deref(), Some("Spooler"));
    assert_eq!(f.script.as_deref(), Some("windows-start-service"));
}

#[test]
fn update_marks_in_the_registry_are_a_pending_restart() {
    let mut s = desktop();
    s.pending_reboot = Some(reasons(&RebootMarks {
        windows_update: true,
        ..RebootMarks::default()
    }));
    let f = one(&s, "restart-pending");
    assert_eq!(f.script.as_deref(), Some("windows-restart-computer"));
}

#[test]
fn a_routing_table_without_a_default_route_is_named() {
    let mut s = desktop();
    s.routes = Some(default_routes(
        &[RouteRow {
            destination: ip("192.168.1.0"),
            prefix_len: 24,
            next_hop: ip("0.0.0.0"),
            interface_index: 7,
        }],
        &adapters(),
    ));
    let f = one(&s, "no-default-route");
    assert_eq!(f.script.as_deref(), Some("windows-renew-address"));
}

#[test]
fn only_an_automatic_private_address_means_no_network_address() {
    // DHCP failed: Windows gave itself 169.254.x.x (APIPA).
    let mut s = desktop();
    s.networks[1].addresses = vec!["169.254.12.34/16".into(), "fe80::1/64".into()];
    s.routes = Some(default_routes(&[], &adapters()));
    let f = one(&s, "no-network-address");
    assert_eq!(f.script.as_deref(), Some("windows-renew-address"));
    assert!(findings(&s).iter().all(|f| f.id != "no-default-route"));
}

#[test]
fn a_resolver_from_the_adapters_that_does_not_answer_is_named() {
    let mut s = desktop();
    let servers = resolvers(&adapters());
    assert_eq!(servers, ["192.168.1.1"]);
    s.name_resolution = Some(NameResolution {
        name: "example.com".into(),
        resolvers: servers,
        outcome: ResolutionOutcome::NameDoesNotExist,
        answered_by: Some("192.168.1.1".into()),
        elapsed_ms: 20,
        checked_at_ms: s.taken_at_ms,
    });
    let f = one(&s, "name-resolution-failing");
    assert_eq!(f.subject.as_deref(), Some("192.168.1.1"));
    assert_eq!(f.script.as_deref(), Some("windows-flush-dns"));
}

#[test]
fn system_times_of_a_busy_machine_and_a_hog_name_the_process() {
    let mut s = desktop();
    let before = SystemTimes {
        idle: 900_000_000,
        kernel: 1_000_000_000,
        user: 400_000_000,
    };
    // 250 ms on 4 cores: 10,000,000 units, of which 200,000 idle.
    let after = SystemTimes {
        idle: before.idle + 200_000,
        kernel: before.kernel + 2_000_000,
        user: before.user + 8_000_000,
    };
    s.cpu.usage_percent = busy_percent(before, after).unwrap();
    assert_eq!(s.cpu.usage_percent, 98.0);
    s.processes.top_cpu = vec![process(4242, "miner.exe", 390.0, 300 * MIB)];
    let all = findings(&s);
    let hog = all.iter().find(|f| f.id == "process-cpu-hog").unwrap();
    assert_eq!(hog.subject.as_deref(), Some("4242"));
    assert_eq!(hog.script.as_deref(), Some("windows-stop-process"));
    assert_eq!(
        one(&s, "cpu-saturated").severity,
        sprijin_proto::message::diag::Severity::Critical
    );
}

#[test]
fn a_memory_hog_is_named_with_the_windows_script() {
    let mut s = desktop();
    s.processes.top_memory = vec![process(77, "chrome.exe", 1.0, 8 * GIB)];
    let f = one(&s, "process-memory-hog");
    assert_eq!(f.script.as_deref(), Some("windows-stop-process"));
}
