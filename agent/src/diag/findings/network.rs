//! Network rules: interface errors and no usable address.

use std::net::IpAddr;

use sprijin_proto::diag_text::percent;
use sprijin_proto::message::diag::{Evidence, Finding, NetworkInterface, Severity, Snapshot};

use super::{Thresholds, scripts};

/// Each interface (loopback aside) with at least the threshold count of
/// errors that are also at least the threshold share of its packets: a bad
/// cable, port, driver or duplex setting.
pub fn network_errors(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    s.networks
        .iter()
        .filter(|n| !is_loopback(n))
        .filter_map(|n| {
            let errors = n.errors_in.saturating_add(n.errors_out);
            let packets = n.packets_in.saturating_add(n.packets_out);
            // Errored frames may not be counted as packets, so they are added
            // to the whole; this also keeps the share defined at 0 packets.
            let share = percent(errors, packets.saturating_add(errors));
            if errors < t.network_error_count || share < t.network_error_percent {
                return None;
            }
            Some(Finding {
                id: "network-errors".into(),
                severity: Severity::Warning,
                title: format!(
                    "Network interface {} has {} errors ({share:.1}% of packets)",
                    n.name, errors
                ),
                evidence: vec![
                    Evidence::new("interface", &n.name),
                    Evidence::new("errors in", n.errors_in.to_string()),
                    Evidence::new("errors out", n.errors_out.to_string()),
                    Evidence::new("packets in", n.packets_in.to_string()),
                    Evidence::new("packets out", n.packets_out.to_string()),
                    Evidence::new("error share", format!("{share:.2}%")),
                ],
                subject: Some(n.name.clone()),
                script: Some(scripts::TEST_CONNECTIVITY.into()),
            })
        })
        .collect()
}

/// No interface has an address that can reach another machine: loopback,
/// link-local (what is left when DHCP fails) and unspecified addresses do
/// not count. Says nothing when no interfaces were listed at all, since that
/// means the list could not be read.
pub fn no_network_address(s: &Snapshot, _t: &Thresholds) -> Vec<Finding> {
    if s.networks.is_empty() {
        return Vec::new();
    }
    let usable = s
        .networks
        .iter()
        .filter(|n| !is_loopback(n))
        .flat_map(|n| &n.addresses)
        .any(|a| parse_address(a).is_some_and(is_usable));
    if usable {
        return Vec::new();
    }
    let names: Vec<&str> = s.networks.iter().map(|n| n.name.as_str()).collect();
    let addresses: Vec<String> = s
        .networks
        .iter()
        .filter(|n| !is_loopback(n))
        .flat_map(|n| {
            n.addresses
                .iter()
                .map(move |a| format!("{a} on {}", n.name))
        })
        .collect();
    vec![Finding {
        id: "no-network-address".into(),
        severity: Severity::Critical,
        title: "No network address: this machine cannot reach the network".into(),
        evidence: vec![
            Evidence::new("interfaces", names.join(", ")),
            Evidence::new(
                "addresses other than loopback",
                if addresses.is_empty() {
                    "none".to_string()
                } else {
                    addresses.join(", ")
                },
            ),
        ],
        subject: None,
        script: Some(scripts::TEST_CONNECTIVITY.into()),
    }]
}

fn is_loopback(n: &NetworkInterface) -> bool {
    // Loopback is named "lo" on Linux and "lo0" on the BSDs and macOS;
    // failing the name, an interface whose every address is loopback is one.
    n.name == "lo"
        || n.name == "lo0"
        || (!n.addresses.is_empty()
            && n.addresses
                .iter()
                .all(|a| parse_address(a).is_some_and(|ip| ip.is_loopback())))
}

/// "192.168.1.20/24" or a bare address to an address.
fn parse_address(s: &str) -> Option<IpAddr> {
    let addr = s.split_once('/').map_or(s, |(addr, _)| addr);
    addr.parse().ok()
}

fn is_usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_unspecified() || v4.is_link_local()),
        IpAddr::V6(v6) => {
            // fe80::/10; `is_unicast_link_local` is not stable on our minimum
            // Rust version.
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            !(v6.is_loopback() || v6.is_unspecified() || link_local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;

    #[test]
    fn interface_with_enough_errors_is_named() {
        let mut s = quiet();
        s.networks[1].packets_in = 9_000;
        s.networks[1].packets_out = 900;
        s.networks[1].errors_in = 80;
        s.networks[1].errors_out = 20;
        let f = only(network_errors(&s, &Thresholds::default()));
        assert_eq!(f.id, "network-errors");
        assert_eq!(f.subject.as_deref(), Some("eth0"));
        assert_eq!(evidence(&f, "errors in"), "80");
        assert_eq!(evidence(&f, "errors out"), "20");
        assert_eq!(evidence(&f, "error share"), "1.00%");
        assert_eq!(f.script.as_deref(), Some(scripts::TEST_CONNECTIVITY));
    }

    #[test]
    fn interface_errors_below_either_threshold_are_quiet() {
        let mut s = quiet();
        // 99 errors, a high share: too few to matter.
        s.networks[1].packets_in = 100;
        s.networks[1].packets_out = 0;
        s.networks[1].errors_in = 99;
        assert_eq!(network_errors(&s, &Thresholds::default()), vec![]);
        // Many errors, but a tiny share of a busy link.
        s.networks[1].packets_in = 10_000_000;
        s.networks[1].errors_in = 5_000;
        assert_eq!(network_errors(&s, &Thresholds::default()), vec![]);
        // Loopback is never reported.
        s.networks[0].errors_in = 1_000;
        assert_eq!(network_errors(&s, &Thresholds::default()), vec![]);
    }

    #[test]
    fn only_loopback_and_link_local_addresses_mean_no_network() {
        let mut s = quiet();
        s.networks[1].addresses = vec!["169.254.7.1/16".into(), "fe80::1/64".into()];
        let f = only(no_network_address(&s, &Thresholds::default()));
        assert_eq!(f.id, "no-network-address");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(evidence(&f, "interfaces"), "lo, eth0");
        assert_eq!(
            evidence(&f, "addresses other than loopback"),
            "169.254.7.1/16 on eth0, fe80::1/64 on eth0"
        );
        assert_eq!(f.script.as_deref(), Some(scripts::TEST_CONNECTIVITY));
        s.networks[1].addresses.clear();
        assert_eq!(
            evidence(
                &only(no_network_address(&s, &Thresholds::default())),
                "addresses other than loopback"
            ),
            "none"
        );
    }

    #[test]
    fn one_global_address_is_enough() {
        let mut s = quiet();
        s.networks[1].addresses = vec!["fe80::1/64".into(), "2001:db8::5/64".into()];
        assert_eq!(no_network_address(&s, &Thresholds::default()), vec![]);
    }
}
