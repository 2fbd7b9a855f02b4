//! Slow checks that may wait on something outside the machine: resolving a
//! name, asking the service manager for failed units and whether the clock
//! is synchronised. Each has a short timeout; the sampler runs them on a
//! thread of their own so a snapshot never waits for them.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sprijin_proto::message::diag::{NameResolution, ResolutionOutcome, Services};

/// The name looked up: it is reserved for examples and exists everywhere
/// the public name system is reachable.
pub const PROBE_NAME: &str = "example.com";

/// How long each resolver has to answer.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a service manager command may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// At most this many resolvers are asked, as the C library does.
const MAX_RESOLVERS: usize = 3;

/// The slow readings, as of their last run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlowReadings {
    pub name_resolution: Option<NameResolution>,
    pub services: Option<Services>,
    pub clock_synchronized: Option<bool>,
}

/// Runs every slow check once. Blocks for at most about
/// [`DNS_TIMEOUT`] plus twice [`COMMAND_TIMEOUT`].
pub fn run_all() -> SlowReadings {
    let systemd = Path::new("/run/systemd/system").is_dir();
    SlowReadings {
        name_resolution: Some(resolve(
            PROBE_NAME,
            &resolvers(Path::new("/etc/resolv.conf")),
            DNS_TIMEOUT,
        )),
        services: if systemd { failed_units() } else { None },
        clock_synchronized: if systemd { clock_synchronized() } else { None },
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
        .take(MAX_RESOLVERS)
        .collect()
}

/// Asks each resolver for the name's IPv4 address, all at once, and tells
/// which answer came: an address, "no such name", a resolver error, or
/// nothing in time.
pub fn resolve(name: &str, resolvers: &[String], timeout: Duration) -> NameResolution {
    let started = Instant::now();
    let mut result = NameResolution {
        name: name.to_string(),
        resolvers: resolvers.to_vec(),
        outcome: ResolutionOutcome::NoResolverConfigured,
        answered_by: None,
        elapsed_ms: 0,
        checked_at_ms: 0,
    };
    if !resolvers.is_empty() {
        let (tx, rx) = mpsc::channel();
        for (i, r) in resolvers.iter().enumerate() {
            let tx = tx.clone();
            let r = r.clone();
            let name = name.to_string();
            let id = 0x5a00u16 | u16::try_from(i).unwrap_or(0);
            let _ = std::thread::Builder::new()
                .name("diag-dns".into())
                .spawn(move || {
                    let outcome = ask(&r, &name, id, timeout);
                    let _ = tx.send((r, outcome));
                });
        }
        drop(tx);
        let mut best: Option<(String, ResolutionOutcome)> = None;
        for (r, outcome) in rx.iter() {
            let Some(outcome) = outcome else { continue };
            let better = best.as_ref().is_none_or(|(_, b)| rank(outcome) < rank(*b));
            if better {
                best = Some((r, outcome));
            }
            if outcome == ResolutionOutcome::Resolved {
                break;
            }
        }
        match best {
            Some((r, outcome)) => {
                result.outcome = outcome;
                result.answered_by = Some(r);
            }
            None => result.outcome = ResolutionOutcome::NoResolverAnswers,
        }
    }
    result.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result.checked_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    result
}

/// Which answer wins when resolvers disagree: an address first.
fn rank(o: ResolutionOutcome) -> u8 {
    match o {
        ResolutionOutcome::Resolved => 0,
        ResolutionOutcome::NameDoesNotExist => 1,
        ResolutionOutcome::ResolverFailed => 2,
        ResolutionOutcome::NoResolverAnswers | ResolutionOutcome::NoResolverConfigured => 3,
    }
}

/// One query to one resolver; `None` when it does not answer in time or
/// cannot be reached.
fn ask(resolver: &str, name: &str, id: u16, timeout: Duration) -> Option<ResolutionOutcome> {
    // A scoped address ("fe80::1%eth0") is left to the C library; plain
    // addresses are all resolv.conf normally holds.
    let ip: IpAddr = resolver.parse().ok()?;
    let server = SocketAddr::new(ip, 53);
    let local: SocketAddr = if ip.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = UdpSocket::bind(local).ok()?;
    socket.connect(server).ok()?;
    socket.send(&query(name, id)?).ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        socket.set_read_timeout(Some(left)).ok()?;
        let n = socket.recv(&mut buf).ok()?;
        if let Some(outcome) = answer(&buf[..n], id) {
            return Some(outcome);
        }
    }
}

/// A standard query for the name's A record, recursion desired.
fn query(name: &str, id: u16) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..64).contains(l))?;
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]);
    Some(q)
}

/// Reads a reply's header: `None` when it is not the reply to our query.
fn answer(reply: &[u8], id: u16) -> Option<ResolutionOutcome> {
    if reply.len() < 12 || reply[0..2] != id.to_be_bytes() || reply[2] & 0x80 == 0 {
        return None;
    }
    Some(match reply[3] & 0x0f {
        // No error: the name exists, with or without an IPv4 address.
        0 => ResolutionOutcome::Resolved,
        3 => ResolutionOutcome::NameDoesNotExist,
        _ => ResolutionOutcome::ResolverFailed,
    })
}

/// Runs a program with a deadline; its standard output when it ends in
/// time with success.
pub fn output_within(program: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ =
            std::io::Read::read_to_end(&mut std::io::Read::take(&mut stdout, 1 << 20), &mut out);
        out
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = reader.join().ok()?;
    status
        .filter(|s| s.success())
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// Units in the failed state, as `systemctl` lists them.
fn failed_units() -> Option<Services> {
    let out = output_within(
        "systemctl",
        &["--failed", "--plain", "--no-legend", "--no-pager"],
        COMMAND_TIMEOUT,
    )?;
    Some(Services {
        failed_units: parse_failed_units(&out),
    })
}

fn parse_failed_units(out: &str) -> Vec<String> {
    let mut units: Vec<String> = out
        .lines()
        // Some versions print a bullet even with --plain.
        .filter_map(|l| l.split_whitespace().find(|w| *w != "●" && *w != "*"))
        .map(|u| u.trim_start_matches('●').to_string())
        .filter(|u| !u.is_empty() && u.contains('.'))
        .collect();
    units.sort();
    units.dedup();
    units
}

/// Whether the clock is synchronised, as systemd's time service says.
fn clock_synchronized() -> Option<bool> {
    let out = output_within(
        "timedatectl",
        &["show", "-p", "NTPSynchronized", "--value"],
        COMMAND_TIMEOUT,
    )?;
    match out.trim() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
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
            "# comment\nsearch lan\nnameserver 10.0.0.1\nnameserver ::1\noptions edns0\nnameserver 1.1.1.1\nnameserver 9.9.9.9\n",
        )
        .unwrap();
        assert_eq!(resolvers(&path), ["10.0.0.1", "::1", "1.1.1.1"]);
        assert!(resolvers(&dir.path().join("absent")).is_empty());
    }

    #[test]
    fn replies_are_told_apart_by_their_code() {
        let mut r = vec![0x5a, 0x00, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        assert_eq!(answer(&r, 0x5a00), Some(ResolutionOutcome::Resolved));
        r[3] = 0x83;
        assert_eq!(
            answer(&r, 0x5a00),
            Some(ResolutionOutcome::NameDoesNotExist)
        );
        r[3] = 0x82;
        assert_eq!(answer(&r, 0x5a00), Some(ResolutionOutcome::ResolverFailed));
        assert_eq!(answer(&r, 0x5a01), None, "another query's reply");
        r[2] = 0x01;
        assert_eq!(answer(&r, 0x5a00), None, "a query, not a reply");
    }

    #[test]
    fn a_silent_resolver_is_told_from_a_missing_name() {
        // Nothing listens there: the resolver cannot be reached.
        let r = resolve(
            "example.com",
            &["127.0.0.2".into()],
            Duration::from_millis(300),
        );
        assert_eq!(r.outcome, ResolutionOutcome::NoResolverAnswers);
        assert_eq!(r.answered_by, None);
        let none = resolve("example.com", &[], Duration::from_millis(300));
        assert_eq!(none.outcome, ResolutionOutcome::NoResolverConfigured);
    }

    #[test]
    fn failed_units_are_the_first_column() {
        let out =
            "cups.service loaded failed failed CUPS Scheduler\n● x.mount loaded failed failed X\n";
        assert_eq!(parse_failed_units(out), ["cups.service", "x.mount"]);
    }

    #[test]
    fn a_command_past_its_deadline_is_ended() {
        let started = Instant::now();
        assert_eq!(
            output_within("sleep", &["10"], Duration::from_millis(200)),
            None
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(
            output_within("echo", &["hi"], Duration::from_secs(5)).as_deref(),
            Some("hi\n")
        );
    }
}
