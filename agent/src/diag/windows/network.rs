//! Default routes and resolvers from IP Helper: the rows of
//! `GetIpForwardTable2` and the adapters of `GetAdaptersAddresses`.

use std::net::IpAddr;

use sprijin_proto::message::diag::Routes;

/// `IF_TYPE_SOFTWARE_LOOPBACK` in `IP_ADAPTER_ADDRESSES::IfType`.
pub const IF_TYPE_SOFTWARE_LOOPBACK: u32 = 24;

/// How many routes of each family a snapshot lists at most.
pub const MAX_ROUTES: usize = 10;

/// `AF_INET` and `AF_INET6` as Windows numbers them.
pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 23;

/// The address of a socket address, from its family and the bytes of its
/// IPv4 (as they lie in memory: network order) or IPv6 address; `None`
/// for any other family.
pub fn ip_from_parts(family: u16, v4: [u8; 4], v6: [u8; 16]) -> Option<IpAddr> {
    match family {
        AF_INET => Some(IpAddr::from(v4)),
        AF_INET6 => Some(IpAddr::from(v6)),
        _ => None,
    }
}

/// One row of the routing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub destination: IpAddr,
    pub prefix_len: u8,
    pub next_hop: IpAddr,
    pub interface_index: u32,
}

/// One network adapter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Adapter {
    pub index: u32,
    /// The name people see, e.g. "Ethernet" or "Wi-Fi".
    pub name: String,
    pub if_type: u32,
    /// Whether it is up (`IfOperStatusUp`).
    pub up: bool,
    pub dns_servers: Vec<IpAddr>,
}

/// The default routes (destination `0.0.0.0/0` or `::/0`), named by
/// adapter: "via 192.168.1.1 on Ethernet".
pub fn default_routes(rows: &[RouteRow], adapters: &[Adapter]) -> Routes {
    let mut routes = Routes::default();
    for r in rows {
        if r.prefix_len != 0 || !r.destination.is_unspecified() {
            continue;
        }
        let adapter = adapters.iter().find(|a| a.index == r.interface_index);
        if adapter.is_some_and(|a| a.if_type == IF_TYPE_SOFTWARE_LOOPBACK) {
            continue;
        }
        let on = adapter.map_or_else(
            || format!("interface {}", r.interface_index),
            |a| a.name.clone(),
        );
        let text = if r.next_hop.is_unspecified() {
            format!("on {on}")
        } else {
            format!("via {} on {on}", r.next_hop)
        };
        let list = if r.destination.is_ipv4() {
            &mut routes.ipv4_default
        } else {
            &mut routes.ipv6_default
        };
        if list.len() < MAX_ROUTES && !list.contains(&text) {
            list.push(text);
        }
    }
    routes
}

/// The DNS servers of the adapters that are up, in order, each once.
/// Windows lists the old site-local `fec0:0:0:ffff::1` to `::3` on an
/// adapter that has no IPv6 resolver; nothing answers there, so they are
/// left out.
pub fn resolvers(adapters: &[Adapter]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in adapters
        .iter()
        .filter(|a| a.up && a.if_type != IF_TYPE_SOFTWARE_LOOPBACK)
    {
        for ip in &a.dns_servers {
            if is_placeholder(ip) || ip.is_unspecified() {
                continue;
            }
            let s = ip.to_string();
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

fn is_placeholder(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            s[..7] == [0xfec0, 0, 0, 0xffff, 0, 0, 0] && (1..=3).contains(&s[7])
        }
        IpAddr::V4(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// As recorded from a laptop on Wi-Fi with a VPN adapter down.
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
                index: 12,
                name: "Wi-Fi".into(),
                if_type: 71,
                up: true,
                dns_servers: vec![
                    ip("192.168.1.1"),
                    ip("fec0:0:0:ffff::1"),
                    ip("fec0:0:0:ffff::2"),
                    ip("fec0:0:0:ffff::3"),
                ],
            },
            Adapter {
                index: 20,
                name: "VPN".into(),
                if_type: 53,
                up: false,
                dns_servers: vec![ip("10.8.0.1")],
            },
        ]
    }

    fn row(dest: &str, prefix: u8, hop: &str, index: u32) -> RouteRow {
        RouteRow {
            destination: ip(dest),
            prefix_len: prefix,
            next_hop: ip(hop),
            interface_index: index,
        }
    }

    #[test]
    fn default_routes_name_their_gateway_and_adapter() {
        let rows = vec![
            row("0.0.0.0", 0, "192.168.1.1", 12),
            row("192.168.1.0", 24, "0.0.0.0", 12),
            row("127.0.0.0", 8, "0.0.0.0", 1),
            row("::", 0, "fe80::1", 12),
            row("::", 0, "::", 99),
        ];
        let r = default_routes(&rows, &adapters());
        assert_eq!(r.ipv4_default, ["via 192.168.1.1 on Wi-Fi"]);
        assert_eq!(r.ipv6_default, ["via fe80::1 on Wi-Fi", "on interface 99"]);
    }

    #[test]
    fn a_table_without_default_routes_has_none() {
        let rows = vec![row("192.168.1.0", 24, "0.0.0.0", 12)];
        assert_eq!(default_routes(&rows, &adapters()), Routes::default());
    }

    #[test]
    fn socket_addresses_are_read_by_family() {
        let v6 = "fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets();
        assert_eq!(
            ip_from_parts(AF_INET, [192, 168, 1, 1], [0; 16]),
            Some(ip("192.168.1.1"))
        );
        assert_eq!(ip_from_parts(AF_INET6, [0; 4], v6), Some(ip("fe80::1")));
        assert_eq!(ip_from_parts(0, [1; 4], [1; 16]), None);
    }

    #[test]
    fn resolvers_come_from_adapters_that_are_up_without_placeholders() {
        assert_eq!(resolvers(&adapters()), ["192.168.1.1"]);
        assert!(resolvers(&[]).is_empty());
    }
}
