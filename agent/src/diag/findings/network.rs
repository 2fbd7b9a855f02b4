//! Network rules: interface errors, no usable address or route, and name
//! resolution failing.

use std::net::IpAddr;

use sprijin_proto::diag_text::percent;
use sprijin_proto::message::diag::{
    Evidence, Finding, NetworkInterface, ResolutionOutcome, Severity, Snapshot,
};

use super::Thresholds;

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
                script: t.fixes().test_connectivity.map(String::from),
                params: Vec::new(),
            })
        })
        .collect()
}

/// No interface has an address that can reach another machine: loopback,
/// link-local (what is left when DHCP fails) and unspecified addresses do
/// not count. Says nothing when no interfaces were listed at all, since that
/// means the list could not be read.
pub fn no_network_address(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
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
        script: t.fixes().renew_address.map(String::from),
        params: Vec::new(),
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

/// The machine has an address to reach other machines but no default
/// route: only its own subnet is reachable, the internet and other
/// networks are not. Says nothing when the routing tables could not be read
/// or when there is no usable address (that is its own finding).
pub fn no_default_route(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(routes) = &s.routes else {
        return Vec::new();
    };
    if !routes.ipv4_default.is_empty() || !routes.ipv6_default.is_empty() {
        return Vec::new();
    }
    let addresses: Vec<String> = s
        .networks
        .iter()
        .filter(|n| !is_loopback(n))
        .flat_map(|n| {
            n.addresses
                .iter()
                .filter(|a| parse_address(a).is_some_and(is_usable))
                .map(move |a| format!("{a} on {}", n.name))
        })
        .collect();
    if addresses.is_empty() {
        return Vec::new();
    }
    vec![Finding {
        id: "no-default-route".into(),
        severity: Severity::Critical,
        title: "No default route: only the local network can be reached".into(),
        evidence: vec![
            Evidence::new("addresses", addresses.join(", ")),
            Evidence::new("ipv4 default route", "none"),
            Evidence::new("ipv6 default route", "none"),
        ],
        subject: None,
        script: t.fixes().renew_address.map(String::from),
        params: Vec::new(),
    }]
}

/// Name resolution does not work: no resolver is configured, none answers
/// (named, so the technician knows which one to check), a resolver answers
/// with an error, or it says a name that exists everywhere does not exist.
pub fn name_resolution_failing(s: &Snapshot, t: &Thresholds) -> Vec<Finding> {
    let Some(r) = &s.name_resolution else {
        return Vec::new();
    };
    let resolvers = if r.resolvers.is_empty() {
        "none".to_string()
    } else {
        r.resolvers.join(", ")
    };
    let (severity, title, subject, script) = match r.outcome {
        ResolutionOutcome::Resolved => return Vec::new(),
        ResolutionOutcome::NoResolverConfigured => (
            Severity::Critical,
            "No name resolver is configured: names cannot be looked up".to_string(),
            None,
            None,
        ),
        ResolutionOutcome::NoResolverAnswers => (
            Severity::Critical,
            format!("No name resolver answers ({resolvers} configured): names cannot be looked up"),
            r.resolvers.first().cloned(),
            t.fixes().test_connectivity,
        ),
        ResolutionOutcome::ResolverFailed => (
            Severity::Critical,
            format!(
                "Name resolver {} answers with an error: names cannot be looked up",
                r.answered_by.as_deref().unwrap_or(&resolvers)
            ),
            r.answered_by.clone(),
            t.fixes().flush_dns,
        ),
        ResolutionOutcome::NameDoesNotExist => (
            Severity::Warning,
            format!(
                "Name resolver {} says {} does not exist: it cannot look up public names",
                r.answered_by.as_deref().unwrap_or(&resolvers),
                r.name
            ),
            r.answered_by.clone(),
            t.fixes().flush_dns,
        ),
    };
    let answer = match r.outcome {
        ResolutionOutcome::Resolved => "an address",
        ResolutionOutcome::NameDoesNotExist => "the name does not exist",
        ResolutionOutcome::ResolverFailed => "an error from the resolver",
        ResolutionOutcome::NoResolverAnswers => "no answer in time",
        ResolutionOutcome::NoResolverConfigured => "no resolver to ask",
    };
    vec![Finding {
        id: "name-resolution-failing".into(),
        severity,
        title,
        evidence: vec![
            Evidence::new("name looked up", &r.name),
            Evidence::new("answer", answer),
            Evidence::new("resolvers configured", resolvers),
            Evidence::new("answered by", r.answered_by.as_deref().unwrap_or("none")),
            Evidence::new("waited", format!("{} ms", r.elapsed_ms)),
        ],
        subject,
        script: script.map(String::from),
        params: Vec::new(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::findings::testing::*;
    use sprijin_proto::message::diag::{NameResolution, Routes};

    #[test]
    fn interface_with_enough_errors_is_named() {
        let mut s = quiet();
        s.networks[1].packets_in = 9_000;
        s.networks[1].packets_out = 900;
        s.networks[1].errors_in = 80;
        s.networks[1].errors_out = 20;
        let f = only(network_errors(&s, &linux()));
        assert_eq!(f.id, "network-errors");
        assert_eq!(f.subject.as_deref(), Some("eth0"));
        assert_eq!(evidence(&f, "errors in"), "80");
        assert_eq!(evidence(&f, "errors out"), "20");
        assert_eq!(evidence(&f, "error share"), "1.00%");
        assert_eq!(f.script.as_deref(), Some("test-connectivity"));
    }

    #[test]
    fn interface_errors_below_either_threshold_are_quiet() {
        let mut s = quiet();
        // 99 errors, a high share: too few to matter.
        s.networks[1].packets_in = 100;
        s.networks[1].packets_out = 0;
        s.networks[1].errors_in = 99;
        assert_eq!(network_errors(&s, &linux()), vec![]);
        // Many errors, but a tiny share of a busy link.
        s.networks[1].packets_in = 10_000_000;
        s.networks[1].errors_in = 5_000;
        assert_eq!(network_errors(&s, &linux()), vec![]);
        // Loopback is never reported.
        s.networks[0].errors_in = 1_000;
        assert_eq!(network_errors(&s, &linux()), vec![]);
    }

    #[test]
    fn only_loopback_and_link_local_addresses_mean_no_network() {
        let mut s = quiet();
        s.networks[1].addresses = vec!["169.254.7.1/16".into(), "fe80::1/64".into()];
        let f = only(no_network_address(&s, &linux()));
        assert_eq!(f.id, "no-network-address");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(evidence(&f, "interfaces"), "lo, eth0");
        assert_eq!(
            evidence(&f, "addresses other than loopback"),
            "169.254.7.1/16 on eth0, fe80::1/64 on eth0"
        );
        assert_eq!(f.script.as_deref(), Some("test-connectivity"));
        s.networks[1].addresses.clear();
        assert_eq!(
            evidence(
                &only(no_network_address(&s, &linux())),
                "addresses other than loopback"
            ),
            "none"
        );
    }

    #[test]
    fn one_global_address_is_enough() {
        let mut s = quiet();
        s.networks[1].addresses = vec!["fe80::1/64".into(), "2001:db8::5/64".into()];
        assert_eq!(no_network_address(&s, &linux()), vec![]);
    }

    #[test]
    fn an_address_without_a_default_route_is_critical() {
        let mut s = quiet();
        s.routes = Some(Routes::default());
        let f = only(no_default_route(&s, &linux()));
        assert_eq!(f.id, "no-default-route");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(evidence(&f, "addresses"), "192.168.1.20/24 on eth0");
        // Unread tables or no usable address: nothing said here.
        s.routes = None;
        assert_eq!(no_default_route(&s, &linux()), vec![]);
        s.routes = Some(Routes::default());
        s.networks[1].addresses = vec!["fe80::1/64".into()];
        assert_eq!(no_default_route(&s, &linux()), vec![]);
        // An IPv6 default route alone is enough.
        s.networks[1].addresses = vec!["2001:db8::5/64".into()];
        s.routes = Some(Routes {
            ipv4_default: vec![],
            ipv6_default: vec!["via fe80::1 on eth0".into()],
        });
        assert_eq!(no_default_route(&s, &linux()), vec![]);
    }

    fn resolution(outcome: ResolutionOutcome, answered_by: Option<&str>) -> NameResolution {
        NameResolution {
            name: "example.com".into(),
            resolvers: vec!["10.0.0.53".into(), "10.0.1.53".into()],
            outcome,
            answered_by: answered_by.map(String::from),
            elapsed_ms: 2000,
            checked_at_ms: NOW_SECS * 1000,
        }
    }

    #[test]
    fn silent_resolvers_are_named() {
        let mut s = quiet();
        s.name_resolution = Some(resolution(ResolutionOutcome::NoResolverAnswers, None));
        let f = only(name_resolution_failing(&s, &linux()));
        assert_eq!(f.id, "name-resolution-failing");
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.title,
            "No name resolver answers (10.0.0.53, 10.0.1.53 configured): names cannot be looked up"
        );
        assert_eq!(evidence(&f, "answer"), "no answer in time");
        assert_eq!(f.subject.as_deref(), Some("10.0.0.53"));
        assert_eq!(f.script.as_deref(), Some("test-connectivity"));
    }

    #[test]
    fn a_missing_name_is_told_from_a_silent_resolver() {
        let mut s = quiet();
        s.name_resolution = Some(resolution(
            ResolutionOutcome::NameDoesNotExist,
            Some("10.0.1.53"),
        ));
        let f = only(name_resolution_failing(&s, &linux()));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(
            f.title,
            "Name resolver 10.0.1.53 says example.com does not exist: it cannot look up public names"
        );
        assert_eq!(evidence(&f, "answer"), "the name does not exist");
        assert_eq!(evidence(&f, "answered by"), "10.0.1.53");
        s.name_resolution = Some(resolution(
            ResolutionOutcome::ResolverFailed,
            Some("10.0.0.53"),
        ));
        assert_eq!(
            evidence(&only(name_resolution_failing(&s, &linux())), "answer"),
            "an error from the resolver"
        );
        s.name_resolution = Some(NameResolution {
            resolvers: vec![],
            ..resolution(ResolutionOutcome::NoResolverConfigured, None)
        });
        assert_eq!(
            evidence(
                &only(name_resolution_failing(&s, &linux())),
                "resolvers configured"
            ),
            "none"
        );
        s.name_resolution = None;
        assert_eq!(name_resolution_failing(&s, &linux()), vec![]);
    }
}
