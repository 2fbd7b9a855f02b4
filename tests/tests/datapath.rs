//! The end-to-end data path: two relayed paths, with tickets from a real
//! rendezvous, carry one QUIC connection through the relay's datagram
//! forwarder. A 16 MiB stream arrives intact; it still does when one side
//! moves to a new socket (a network change) or when the relay restarts on
//! the same address and data dir in the middle; forged and expired tickets
//! are dropped and counted; a third party who copies a header gets nothing.
//! The relay sends nothing to an address that has not proven it receives
//! there: a presentation sent in a victim's name gets a challenge shorter
//! than itself and nothing more, and a presentation replayed right after a
//! restart binds nothing. A relay listening on every address carries a
//! session reached at another of them than the one it answers from by
//! default.
//!
//! The relay runs in-process from its library on its own runtime, so a
//! test can read its metrics and restart it; the two sides run on another.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sprijin_proto::path::wire::{self, Side, TicketMint};
use sprijin_proto::tls::Fingerprint;
use sprijin_relay::metrics::{Dropped, Metrics};
use sprijin_relay::{Relay, RelayConfig};
use sprijin_tests::bench::relayed::{self, Ends, Tickets};

const MIB: u64 = 1024 * 1024;
const TRANSFER: u64 = 16 * MIB;

/// How long a transfer or a condition may take on a loaded machine.
const WITHIN: Duration = Duration::from_secs(60);

/// A relay in-process on its own runtime; dropping it stops it at once,
/// like a crash.
struct TestRelay {
    addr: SocketAddr,
    fingerprint: Fingerprint,
    metrics: Arc<Metrics>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestRelay {
    /// The relay as reached at `ip` (one of the addresses it listens on).
    fn reached_at(mut self, ip: std::net::IpAddr) -> TestRelay {
        self.addr.set_ip(ip);
        self
    }

    fn start(listen: SocketAddr, data_dir: &Path) -> TestRelay {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let deadline = Instant::now() + WITHIN;
        let relay = loop {
            let config = RelayConfig::new(listen, data_dir.to_path_buf());
            let _in_runtime = runtime.enter();
            match Relay::bind(config) {
                Ok(relay) => break relay,
                // The old relay's socket may take a moment to close.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("binding again: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot bind the relay: {e}"),
            }
        };
        let addr = relay.local_addr().unwrap();
        let fingerprint = relay.fingerprint();
        let metrics = relay.metrics();
        runtime.spawn(relay.run(std::future::pending()));
        TestRelay {
            addr,
            fingerprint,
            metrics,
            runtime: Some(runtime),
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn clients() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Pairs through `relay` and connects the two paths.
fn session(rt: &tokio::runtime::Runtime, relay: &TestRelay) -> (Tickets, Ends) {
    rt.block_on(async {
        let tickets = relayed::pair(&relay.addr.to_string(), relay.fingerprint)
            .await
            .expect("pair through the relay");
        let ends = tokio::time::timeout(WITHIN, relayed::through_relay(relay.addr, &tickets))
            .await
            .expect("connect in time")
            .expect("connect through the forwarder");
        (tickets, ends)
    })
}

/// Sends `TRANSFER` bytes console to agent; once a third has arrived, runs
/// `midway`. Returns what arrived: its length and digest.
fn transfer(rt: &tokio::runtime::Runtime, ends: &Ends, midway: impl FnOnce()) -> (u64, [u8; 32]) {
    let progress = Arc::new(AtomicU64::new(0));
    let sender = {
        let conn = ends.console.clone();
        rt.spawn(async move { relayed::send_pattern(&conn, TRANSFER).await })
    };
    let receiver = {
        let conn = ends.agent.clone();
        let progress = progress.clone();
        rt.spawn(
            async move { relayed::receive(&conn, |n| progress.store(n, Ordering::Relaxed)).await },
        )
    };
    wait_for("a third of the transfer", || {
        progress.load(Ordering::Relaxed) >= TRANSFER / 3
    });
    midway();
    let received = rt
        .block_on(async { tokio::time::timeout(WITHIN, receiver).await })
        .expect("the transfer finishes in time")
        .unwrap()
        .expect("the transfer completes");
    rt.block_on(sender).unwrap().expect("the sender finishes");
    received
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WITHIN;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_intact(received: (u64, [u8; 32])) {
    assert_eq!(received.0, TRANSFER, "bytes lost or repeated");
    assert!(
        received.1 == relayed::pattern_digest(TRANSFER),
        "the bytes arrived changed, repeated or out of order"
    );
}

#[test]
fn sixteen_mib_arrive_intact_through_the_forwarder() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(loopback(), &dir.path().join("relay"));
    let rt = clients();
    let (_tickets, ends) = session(&rt, &relay);
    assert_eq!(
        ends.agent.remote_address(),
        relay.addr,
        "the agent sees the relay, not the console"
    );
    assert_intact(transfer(&rt, &ends, || {}));
    assert!(
        relay.metrics.bytes_forwarded.get() >= TRANSFER,
        "the bytes went through the forwarder: {}",
        relay.metrics.bytes_forwarded.get()
    );
    assert_eq!(relay.metrics.forwarding_entries.get(), 1);
}

#[test]
fn a_network_change_mid_transfer_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(loopback(), &dir.path().join("relay"));
    let rt = clients();
    let (_tickets, ends) = session(&rt, &relay);
    let path = ends.agent_path.as_ref().unwrap();
    let before = path.endpoint().local_addr().unwrap();
    let received = transfer(&rt, &ends, || {
        let _in_runtime = rt.enter();
        path.rebind().expect("move to a new socket");
    });
    let after = path.endpoint().local_addr().unwrap();
    assert_ne!(before, after, "the agent's address changed");
    assert_intact(received);
}

#[test]
fn a_relay_restart_mid_transfer_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir: PathBuf = dir.path().join("relay");
    let relay = TestRelay::start(loopback(), &data_dir);
    let addr = relay.addr;
    let rt = clients();
    let (_tickets, ends) = session(&rt, &relay);
    let mut relay = Some(relay);
    let mut second = None;
    let received = transfer(&rt, &ends, || {
        drop(relay.take());
        second = Some(TestRelay::start(addr, &data_dir));
    });
    assert_intact(received);
    let second = second.unwrap();
    assert!(
        second.metrics.datagrams_forwarded.get() > 0,
        "the restarted relay carried the rest"
    );
}

/// Sends `datagram` from a fresh socket and waits until `counted` rises.
fn dropped_and_counted(relay: &TestRelay, datagram: &[u8], reason: Dropped) -> UdpSocket {
    let before = relay.metrics.dropped_count(reason);
    let socket = UdpSocket::bind(loopback()).unwrap();
    socket.send_to(datagram, relay.addr).unwrap();
    wait_for("the drop to be counted", || {
        relay.metrics.dropped_count(reason) > before
    });
    socket
}

#[test]
fn forged_and_expired_tickets_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("relay");
    let relay = TestRelay::start(loopback(), &data_dir);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // A ticket under another secret.
    let forger = TicketMint::new([7; 32]);
    let forged = forger.issue(1, Side::Agent, now + 3600);
    let p = wire::presentation(&forged.token, &forged.key, 1).unwrap();
    let forged_socket = dropped_and_counted(&relay, &p, Dropped::Forged);

    // A real ticket (made with the relay's own key) whose time is over.
    let secret = sprijin_relay::secret::Secret::load_or_create(&data_dir).unwrap();
    let mint = TicketMint::new(secret.forwarding());
    let expired = mint.issue(2, Side::Agent, now - 1);
    let p = wire::presentation(&expired.token, &expired.key, 1).unwrap();
    let expired_socket = dropped_and_counted(&relay, &p, Dropped::Expired);

    // A real, valid ticket presented under the wrong key.
    let valid = mint.issue(3, Side::Console, now + 3600);
    let p = wire::presentation(&valid.token, &[0; 32], 1).unwrap();
    let _ = dropped_and_counted(&relay, &p, Dropped::Forged);

    // Nothing of theirs became a forwarding entry, and no answer came.
    assert_eq!(relay.metrics.forwarding_entries.get(), 0);
    for socket in [forged_socket, expired_socket] {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(socket.recv_from(&mut buf).is_err(), "the relay answered");
    }
}

#[test]
fn a_third_party_with_a_copied_header_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(loopback(), &dir.path().join("relay"));
    let rt = clients();
    let (tickets, ends) = session(&rt, &relay);

    // The third party knows the session's header (it saw a datagram) and
    // even an old presentation of the agent's ticket; it sends from its
    // own address throughout the transfer.
    let fields = wire::read_token(&tickets.agent.token).unwrap();
    let mut copied = wire::data_header(fields.session, fields.side).to_vec();
    copied.extend_from_slice(&[0x40; 100]);
    let replayed = wire::presentation(&tickets.agent.token, &tickets.agent.key, 1).unwrap();
    let thief = Arc::new(UdpSocket::bind(loopback()).unwrap());
    thief
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let sending = {
        let (thief, stop, got, relay_addr) = (thief.clone(), stop.clone(), got.clone(), relay.addr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                let _ = thief.send_to(&copied, relay_addr);
                let _ = thief.send_to(&replayed, relay_addr);
                while let Ok((n, _)) = thief.recv_from(&mut buf) {
                    // Asks for a ticket, and challenges, it cannot answer
                    // are all it may get.
                    if !is_ask_or_challenge(&buf[..n]) {
                        got.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let received = transfer(&rt, &ends, || {});
    stop.store(true, Ordering::Relaxed);
    sending.join().unwrap();
    assert_intact(received);
    assert_eq!(
        got.load(Ordering::Relaxed),
        0,
        "the third party received the session's datagrams"
    );
    assert!(relay.metrics.dropped_count(Dropped::ThirdParty) > 0);
}

/// Whether `d` is one of the relay's requests (or the address it saw with a
/// challenge), which is all an address
/// that has not proven itself may get.
fn is_ask_or_challenge(d: &[u8]) -> bool {
    matches!(
        wire::parse(d),
        wire::Datagram::Ask { .. } | wire::Datagram::Challenge { .. } | wire::Datagram::Seen { .. }
    )
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// Sends `presentation` to the relay from `socket` every few milliseconds
/// for `how_long`, never answering; returns the bytes sent, the bytes
/// received, and how many received datagrams were anything but an ask or
/// a challenge.
fn present_without_echo(
    socket: &UdpSocket,
    relay: SocketAddr,
    presentation: &[u8],
    how_long: Duration,
) -> (usize, usize, usize) {
    socket
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let (mut sent, mut received, mut other) = (0, 0, 0);
    let mut buf = [0u8; 2048];
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        sent += socket.send_to(presentation, relay).unwrap();
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if from != relay {
                continue;
            }
            received += n;
            if !is_ask_or_challenge(&buf[..n]) {
                other += 1;
            }
        }
    }
    (sent, received, other)
}

#[test]
fn a_presentation_in_a_victims_name_gets_no_more_bytes_than_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start(loopback(), &dir.path().join("relay"));
    let rt = clients();
    let (tickets, ends) = session(&rt, &relay);
    // Someone who saw the agent's presentation sends it again, with the
    // victim's address as its source (here: from the victim's socket, which
    // never answers), while the session carries a transfer.
    let presentation = wire::presentation(
        &tickets.agent.token,
        &tickets.agent.key,
        now_micros() + (1 << 40),
    )
    .unwrap();
    let victim = UdpSocket::bind("127.0.0.2:0").unwrap();
    let mut outcome = (0, 0, 0);
    let received = transfer(&rt, &ends, || {
        outcome = present_without_echo(
            &victim,
            relay.addr,
            &presentation,
            Duration::from_millis(500),
        );
    });
    let (sent, got, other) = outcome;
    assert!(
        got <= sent,
        "the victim got {got} bytes for the {sent} sent in its name"
    );
    assert_eq!(other, 0, "the victim got the session's datagrams");
    assert!(got > 0, "the presentation was not even challenged");
    assert_intact(received);
}

#[test]
fn a_presentation_replayed_after_a_restart_binds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir: PathBuf = dir.path().join("relay");
    let relay = TestRelay::start(loopback(), &data_dir);
    let addr = relay.addr;
    let rt = clients();
    let (tickets, ends) = session(&rt, &relay);
    // A presentation of the agent's, seen on the wire before the restart.
    let seen = wire::presentation(&tickets.agent.token, &tickets.agent.key, now_micros()).unwrap();
    let attacker = UdpSocket::bind(loopback()).unwrap();
    let mut relay = Some(relay);
    let mut second = None;
    let mut outcome = (0, 0, 0);
    let received = transfer(&rt, &ends, || {
        drop(relay.take());
        second = Some(TestRelay::start(addr, &data_dir));
        // Replayed at once, before the sides present again, and on.
        outcome = present_without_echo(&attacker, addr, &seen, Duration::from_secs(1));
    });
    let (_, _, other) = outcome;
    assert_eq!(
        other, 0,
        "the replay re-bound the agent's side to the attacker"
    );
    assert_intact(received);
}

#[test]
fn a_relay_on_every_address_carries_a_session_reached_at_another() {
    let dir = tempfile::tempdir().unwrap();
    let relay = TestRelay::start("0.0.0.0:0".parse().unwrap(), &dir.path().join("relay"))
        .reached_at("127.0.0.2".parse().unwrap());
    let rt = clients();
    let (_tickets, ends) = session(&rt, &relay);
    assert_intact(transfer(&rt, &ends, || {}));
}
