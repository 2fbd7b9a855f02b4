//! Slow checks that may wait on something outside the machine: resolving a
//! name through the resolvers the platform names, and what the platform's
//! own slow sources say (failed or stopped services, the clock, a pending
//! restart), and the sizes of the folders that commonly fill a disk. Each
//! has a short timeout or bound; the sampler runs them on a thread of their
//! own so a snapshot never waits for them.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sprijin_proto::message::diag::{FolderSize, NameResolution, ResolutionOutcome, Services};

use crate::platform::diag as source;

/// The name looked up: it is reserved for examples and exists everywhere
/// the public name system is reachable.
pub const PROBE_NAME: &str = "example.com";

/// How long each resolver has to answer.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a service manager command or query may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);

/// At most this many resolvers are asked, as the C library does.
pub const MAX_RESOLVERS: usize = 3;

/// The slow readings, as of their last run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlowReadings {
    pub name_resolution: Option<NameResolution>,
    pub services: Option<Services>,
    pub clock_synchronized: Option<bool>,
    pub pending_reboot: Option<Vec<String>>,
    pub folders: Vec<FolderSize>,
}

/// Runs every slow check once. Blocks for at most about
/// [`DNS_TIMEOUT`] plus twice [`COMMAND_TIMEOUT`], plus the bounded folder
/// walks.
pub fn run_all() -> SlowReadings {
    let mut slow = run_checks();
    slow.folders = measure_folders();
    slow
}

/// The checks without the folder walks: name resolution and the
/// platform's own slow sources.
pub fn run_checks() -> SlowReadings {
    let mut resolvers = source::resolvers();
    resolvers.truncate(MAX_RESOLVERS);
    let mut slow = SlowReadings {
        name_resolution: Some(resolve(PROBE_NAME, &resolvers, DNS_TIMEOUT)),
        ..SlowReadings::default()
    };
    source::slow_readings(&mut slow);
    slow
}

/// The sizes of the folders the platform names.
pub fn measure_folders() -> Vec<FolderSize> {
    super::folders::measure(&source::folders_to_measure())
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
