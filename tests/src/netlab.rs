//! A small network of namespaces for end-to-end tests of the direct path:
//!
//! ```text
//!  host A 192.168.1.2 ── NAT A (lan 192.168.1.1, wan 10.100.1.2) ─┐
//!                                                                   internet: 10.100.1.1, 10.100.2.1
//!  host B 192.168.2.2 ── NAT B (lan 192.168.2.1, wan 10.100.2.2) ─┘  (the relay listens on 10.100.1.1)
//! ```
//!
//! or, with [`Lab::same_lan`], hosts A (192.168.1.2) and B (192.168.1.3) on
//! one bridge behind NAT A. The internet knows no route to the LANs, so a
//! private address never crosses it. Every namespace's name carries this
//! process's id and a counter, so labs of tests running side by side never
//! meet; dropping a [`Lab`] deletes its namespaces.
//!
//! NATs, built with nftables in the NAT's namespace:
//! - [`Nat::Easy`]: endpoint-independent mapping and filtering, port
//!   preserving ("full cone"): `masquerade` keeps the host's port, and
//!   whatever arrives at the NAT's wan address is sent on to the host on
//!   the same port.
//! - [`Nat::Hard`]: endpoint-dependent mapping (`masquerade fully-random`,
//!   a new port for every destination) and filtering (only replies come
//!   in), as a symmetric NAT does.

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How a NAT maps and filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat {
    Easy,
    Hard,
}

/// Where a program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The internet's own namespace, where the relay runs.
    Relay,
    A,
    B,
}

/// A lab's namespaces, deleted on drop.
pub struct Lab {
    prefix: String,
    same_lan: bool,
    made: Vec<String>,
}

static LABS: AtomicUsize = AtomicUsize::new(0);

/// Runs `ip` with `args`, panicking with its message if it fails.
fn ip(args: &[&str]) {
    run("ip", args);
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn present(program: &str, version: &str) -> bool {
    Command::new(program)
        .arg(version)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Lab {
    /// Where the relay listens.
    pub const RELAY_IP: &'static str = "10.100.1.1";

    /// Whether labs can be made here: root, `ip` and `nft`.
    pub fn available() -> bool {
        crate::faults::is_root() && present("ip", "-V") && present("nft", "--version")
    }

    fn empty(same_lan: bool) -> Lab {
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        Lab {
            prefix: format!("sp{}x{n}", std::process::id()),
            same_lan,
            made: Vec::new(),
        }
    }

    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Makes namespace `name` with loopback up.
    fn add(&mut self, name: &str, forwards: bool) {
        let ns = self.ns(name);
        ip(&["netns", "add", &ns]);
        self.made.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        if forwards {
            self.exec(&ns, "sysctl", &["-qw", "net.ipv4.ip_forward=1"]);
        }
    }

    fn exec(&self, ns: &str, program: &str, args: &[&str]) {
        let mut all = vec!["netns", "exec", ns, program];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// A veth pair: `a` in namespace `na` with `a_addr`, `b` in `nb` with
    /// `b_addr` (either address may be empty), both up.
    fn wire(&self, na: &str, a: &str, a_addr: &str, nb: &str, b: &str, b_addr: &str) {
        let (na, nb) = (self.ns(na), self.ns(nb));
        ip(&[
            "-n", &na, "link", "add", a, "type", "veth", "peer", "name", b, "netns", &nb,
        ]);
        for (ns, dev, addr) in [(&na, a, a_addr), (&nb, b, b_addr)] {
            if !addr.is_empty() {
                ip(&["-n", ns, "addr", "add", addr, "dev", dev]);
            }
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }

    fn route(&self, name: &str, via: &str) {
        ip(&["-n", &self.ns(name), "route", "add", "default", "via", via]);
    }

    fn nft(&self, name: &str, script: &str) {
        let ns = self.ns(name);
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(script.as_bytes())?;
                }
                child.wait_with_output()
            })
            .unwrap_or_else(|e| panic!("cannot run nft: {e}"));
        assert!(
            out.status.success(),
            "nft in {ns} failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// NAT `name` of kind `nat` between `lan` and `wan`, for `hosts` on
    /// its LAN (an easy NAT sends what arrives from outside on to the
    /// first).
    fn nat(&self, name: &str, nat: Nat, host: &str) {
        let masquerade = match nat {
            Nat::Easy => "masquerade",
            Nat::Hard => "masquerade fully-random",
        };
        let inbound = match nat {
            Nat::Easy => format!(
                "chain prerouting {{ type nat hook prerouting priority dstnat; \
                 iifname \"wan\" meta l4proto udp dnat to {host}; }}"
            ),
            Nat::Hard => String::new(),
        };
        self.nft(
            name,
            &format!(
                "table ip lab {{\n\
                 chain postrouting {{ type nat hook postrouting priority srcnat; \
                 oifname \"wan\" {masquerade}; }}\n\
                 {inbound}\n\
                 }}\n"
            ),
        );
    }

    /// Two hosts, each behind a NAT of its own kind.
    pub fn new(a: Nat, b: Nat) -> Lab {
        let mut lab = Lab::empty(false);
        lab.add("i", true);
        for (side, nat, n) in [("a", a, 1), ("b", b, 2)] {
            let (nat_ns, host_ns) = (format!("n{side}"), format!("h{side}"));
            lab.add(&nat_ns, true);
            lab.add(&host_ns, false);
            lab.wire(
                &nat_ns,
                "wan",
                &format!("10.100.{n}.2/24"),
                "i",
                &format!("i{side}"),
                &format!("10.100.{n}.1/24"),
            );
            lab.wire(
                &nat_ns,
                "lan",
                &format!("192.168.{n}.1/24"),
                &host_ns,
                "eth0",
                &format!("192.168.{n}.2/24"),
            );
            lab.route(&nat_ns, &format!("10.100.{n}.1"));
            lab.route(&host_ns, &format!("192.168.{n}.1"));
            lab.nat(&nat_ns, nat, &format!("192.168.{n}.2"));
        }
        lab
    }

    /// Hosts A and B on one LAN behind one NAT: the same office.
    pub fn same_lan() -> Lab {
        let mut lab = Lab::empty(true);
        lab.add("i", true);
        lab.add("na", true);
        lab.add("ha", false);
        lab.add("hb", false);
        lab.wire("na", "wan", "10.100.1.2/24", "i", "ia", "10.100.1.1/24");
        let na = lab.ns("na");
        ip(&["-n", &na, "link", "add", "lan", "type", "bridge"]);
        ip(&["-n", &na, "addr", "add", "192.168.1.1/24", "dev", "lan"]);
        ip(&["-n", &na, "link", "set", "lan", "up"]);
        for (host, port, addr) in [
            ("ha", "pa", "192.168.1.2/24"),
            ("hb", "pb", "192.168.1.3/24"),
        ] {
            lab.wire("na", port, "", host, "eth0", addr);
            ip(&["-n", &na, "link", "set", port, "master", "lan"]);
            lab.route(host, "192.168.1.1");
        }
        lab.route("na", "10.100.1.1");
        // Only masquerade: nothing from outside comes in unasked.
        lab.nat("na", Nat::Hard, "192.168.1.2");
        lab
    }

    fn host_ns(&self, host: Host) -> String {
        self.ns(match host {
            Host::Relay => "i",
            Host::A => "ha",
            Host::B => "hb",
        })
    }

    /// `program` to run on `host`.
    pub fn command(&self, host: Host, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec"])
            .arg(self.host_ns(host))
            .arg(program);
        cmd
    }

    /// The host's own address.
    pub fn host_ip(&self, host: Host) -> IpAddr {
        IpAddr::V4(match (host, self.same_lan) {
            (Host::Relay, _) => Ipv4Addr::new(10, 100, 1, 1),
            (Host::A, _) => Ipv4Addr::new(192, 168, 1, 2),
            (Host::B, true) => Ipv4Addr::new(192, 168, 1, 3),
            (Host::B, false) => Ipv4Addr::new(192, 168, 2, 2),
        })
    }

    /// The address the internet sees the host at.
    pub fn public_ip(&self, host: Host) -> IpAddr {
        IpAddr::V4(match (host, self.same_lan) {
            (Host::Relay, _) => Ipv4Addr::new(10, 100, 1, 1),
            (Host::A, _) | (Host::B, true) => Ipv4Addr::new(10, 100, 1, 2),
            (Host::B, false) => Ipv4Addr::new(10, 100, 2, 2),
        })
    }

    /// Drops whatever goes between A and B directly, in both directions,
    /// while both still reach the relay.
    pub fn cut_direct(&self) {
        if self.same_lan {
            self.nft(
                "na",
                "table bridge cut {\n\
                 chain forward { type filter hook forward priority 0; \
                 iifname { \"pa\", \"pb\" } oifname { \"pa\", \"pb\" } drop; }\n\
                 }\n",
            );
        } else {
            self.nft(
                "i",
                "table ip cut {\n\
                 chain forward { type filter hook forward priority 0; \
                 ip saddr 10.100.0.0/16 ip daddr 10.100.0.0/16 drop; }\n\
                 }\n",
            );
        }
    }

    /// Takes [`Lab::cut_direct`]'s rule away.
    pub fn mend_direct(&self) {
        let (ns, family) = if self.same_lan {
            ("na", "bridge")
        } else {
            ("i", "ip")
        };
        self.nft(ns, &format!("delete table {family} cut\n"));
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
