//! The relay stays small under abuse: a real relay on 127.0.0.1 faced with
//! a hostile client built here from quinn and proto's framing. Each limit
//! refuses what it must, says so (an error frame or a refused connection),
//! counts it in the metrics, and the relay keeps serving everyone else.
//! Floods of datagrams as large as UDP allows leave the relay's memory
//! small, and a connection the relay made retry is admitted however late
//! its retried Initial arrives.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sprijin_proto::client::{ConnectError, RelayLink};
use sprijin_proto::code::Nameplate;
use sprijin_proto::framing::{FrameReader, FrameWriter, MAX_CONTROL_FRAME};
use sprijin_proto::message::control::{ClientMsg, ErrorCode, Hello, RelayMsg, Role};
use sprijin_proto::tls::{self, CONTROL_WINDOW, Fingerprint};
use sprijin_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long to watch for something that must not happen (a blocked stream
/// opening, a blocked write).
const BLOCKED: Duration = Duration::from_millis(700);

/// A relay's address and pin, as a hostile client sees them.
struct Target {
    addr: SocketAddr,
    pin: Fingerprint,
}

impl Target {
    fn of(relay: &RelayProc) -> Target {
        Target {
            addr: relay.addr.parse().unwrap(),
            pin: relay.fingerprint.parse().unwrap(),
        }
    }

    /// A QUIC connection to the relay from `from`, or quinn's error.
    async fn connect(
        &self,
        from: IpAddr,
    ) -> (
        quinn::Endpoint,
        Result<quinn::Connection, quinn::ConnectionError>,
    ) {
        let (config, _) = tls::client_config(Some(self.pin)).unwrap();
        let mut endpoint = quinn::Endpoint::client(SocketAddr::new(from, 0))
            .unwrap_or_else(|e| panic!("bind a client on {from}: {e}"));
        endpoint.set_default_client_config(config);
        let connecting = endpoint.connect(self.addr, "localhost").unwrap();
        let result = tokio::time::timeout(STEP, connecting)
            .await
            .expect("the relay answers a connection attempt");
        (endpoint, result)
    }

    /// A connection with its control stream open and a hello sent.
    async fn control(&self, from: IpAddr, role: Role) -> Control {
        let (endpoint, connection) = self.connect(from).await;
        let connection = connection.expect("connect to the relay");
        let (send, recv) = connection.open_bi().await.unwrap();
        let mut writer = FrameWriter::new(send);
        writer.write_msg(&Hello::new(role)).await.unwrap();
        Control {
            _endpoint: endpoint,
            connection,
            writer,
            reader: FrameReader::new(recv),
        }
    }
}

struct Control {
    _endpoint: quinn::Endpoint,
    connection: quinn::Connection,
    writer: FrameWriter<quinn::SendStream>,
    reader: FrameReader<quinn::RecvStream>,
}

impl Control {
    async fn reply(&mut self) -> RelayMsg {
        tokio::time::timeout(STEP, self.reader.expect_msg::<RelayMsg>())
            .await
            .expect("the relay answers in time")
            .expect("the relay answers with a message")
    }

    /// Asks for a nameplate as an agent and returns the relay's answer.
    async fn open(&mut self) -> RelayMsg {
        self.writer.write_msg(&ClientMsg::Open).await.unwrap();
        self.reply().await
    }
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

/// A local TCP address nothing listens on right now.
fn free_tcp_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// One HTTP request to the metrics endpoint: the whole answer, head and
/// body, or what went wrong (a refused request may be cut with a reset).
async fn http_get(metrics: SocketAddr) -> Result<String, std::io::Error> {
    let mut socket = TcpStream::connect(metrics).await?;
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await?;
    let mut text = String::new();
    tokio::time::timeout(STEP, socket.read_to_string(&mut text))
        .await
        .expect("the metrics endpoint answers in time")?;
    Ok(text)
}

/// The metrics text, once the endpoint serves it again.
async fn scrape(metrics: SocketAddr) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let answer = http_get(metrics).await;
        if let Ok(text) = &answer
            && text.starts_with("HTTP/1.1 200")
        {
            return text.clone();
        }
        assert!(Instant::now() < deadline, "metrics not served: {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many times `limit` refused, from the metrics text.
fn limited(text: &str, limit: &str) -> u64 {
    let series = format!("sprijin_relay_limited_total{{limit=\"{limit}\"}}");
    text.lines()
        .find_map(|line| line.strip_prefix(&series)?.split_whitespace().next())
        .map(|v| v.parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

#[tokio::test]
async fn an_oversized_control_frame_is_refused_with_an_error_frame() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let target = Target::of(&relay);

    // A well-formed claim whose name makes it larger than a control frame
    // but well under the session frame limit.
    let mut console = target.control(LOCAL, Role::Console).await;
    let claim = ClientMsg::Claim {
        nameplate: Nameplate::new(4242).unwrap(),
        technician: "x".repeat(MAX_CONTROL_FRAME + 1),
        token: None,
    };
    console.writer.write_msg(&claim).await.unwrap();
    match console.reply().await {
        RelayMsg::Error(e) => {
            assert_eq!(e.code, ErrorCode::ProtocolViolation, "{}", e.message);
            assert!(
                e.message
                    .contains(&format!("over the limit of {MAX_CONTROL_FRAME} bytes")),
                "{}",
                e.message
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A claim of ordinary size is still read and answered.
    let mut console = target.control(LOCAL, Role::Console).await;
    let claim = ClientMsg::Claim {
        nameplate: Nameplate::new(4242).unwrap(),
        technician: "Ana".into(),
        token: None,
    };
    console.writer.write_msg(&claim).await.unwrap();
    match console.reply().await {
        RelayMsg::Error(e) => assert_eq!(e.code, ErrorCode::UnknownNameplate, "{}", e.message),
        other => panic!("expected unknown nameplate, got {other:?}"),
    }
    assert_eq!(limited(&scrape(metrics).await, "ControlFrame"), 1);
}

#[tokio::test]
async fn too_many_connections_from_one_address_are_refused_while_others_are_served() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&[
        "--metrics",
        &metrics.to_string(),
        "--connections-per-address",
        "3",
    ]);
    let target = Target::of(&relay);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut agent = target.control(LOCAL, Role::Agent).await;
        assert!(matches!(agent.open().await, RelayMsg::Opened { .. }));
        held.push(agent);
    }

    // The fourth from the same address is turned away before its handshake,
    // and a client is told plainly why.
    let (_endpoint, fourth) = target.connect(LOCAL).await;
    match fourth {
        Err(quinn::ConnectionError::ConnectionClosed(close)) => {
            assert_eq!(
                close.error_code,
                quinn::TransportErrorCode::CONNECTION_REFUSED
            )
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }
    match RelayLink::connect(&relay.addr, Some(target.pin), Role::Agent).await {
        Err(e @ ConnectError::Refused { .. }) => {
            let text = e.to_string();
            assert!(text.contains("refused the connection"), "{text}");
            assert!(text.contains("for your address"), "{text}");
        }
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("a fourth connection from one address was let in"),
    }

    // Another address is served.
    let mut other = target.control(OTHER, Role::Agent).await;
    assert!(matches!(other.open().await, RelayMsg::Opened { .. }));

    // Once one of the three leaves, its place comes back.
    let gone = held.pop().unwrap();
    gone.connection.close(0u32.into(), b"done");
    let deadline = Instant::now() + STEP;
    loop {
        let (_endpoint, again) = target.connect(LOCAL).await;
        if again.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the place never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert!(limited(&scrape(metrics).await, "ConnectionsPerAddress") >= 2);
}

#[tokio::test]
async fn too_many_codes_asked_for_in_a_minute_from_one_address_are_refused() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string(), "--opens-per-minute", "3"]);
    let target = Target::of(&relay);
    // Each agent leaves after getting its code, so only the rate can refuse.
    for n in 1..=3 {
        let mut agent = target.control(LOCAL, Role::Agent).await;
        let reply = agent.open().await;
        assert!(
            matches!(reply, RelayMsg::Opened { .. }),
            "open {n}: {reply:?}"
        );
        agent.connection.close(0u32.into(), b"done");
    }
    let mut agent = target.control(LOCAL, Role::Agent).await;
    match agent.open().await {
        RelayMsg::Error(e) => {
            assert_eq!(e.code, ErrorCode::RateLimited, "{}", e.message);
            assert!(e.message.contains("at most 3 a minute"), "{}", e.message);
        }
        other => panic!("expected the fourth open to be refused, got {other:?}"),
    }
    let mut other = target.control(OTHER, Role::Agent).await;
    assert!(matches!(other.open().await, RelayMsg::Opened { .. }));
    assert_eq!(limited(&scrape(metrics).await, "OpensPerMinute"), 1);
}

#[tokio::test]
async fn a_waiting_client_gets_one_stream_and_a_small_window() {
    let relay = RelayProc::start(&[]);
    let target = Target::of(&relay);
    let mut agent = target.control(LOCAL, Role::Agent).await;
    assert!(matches!(agent.open().await, RelayMsg::Opened { .. }));

    // The control stream is the only stream the relay allows.
    let second = tokio::time::timeout(BLOCKED, agent.connection.open_bi()).await;
    assert!(second.is_err(), "a second stream was allowed");
    let uni = tokio::time::timeout(BLOCKED, agent.connection.open_uni()).await;
    assert!(uni.is_err(), "a unidirectional stream was allowed");
    assert!(
        agent.connection.max_datagram_size().is_none(),
        "the relay accepts datagrams"
    );

    // Bytes pushed while waiting: the relay does not read them, and it
    // grants credit for no more than a control window.
    let stream = agent.writer.get_mut();
    let chunk = vec![0u8; 16 * 1024];
    let mut accepted = 0usize;
    while accepted < 4 * 1024 * 1024 {
        match tokio::time::timeout(BLOCKED, stream.write(&chunk)).await {
            Ok(Ok(n)) => accepted += n,
            Ok(Err(e)) => panic!("the stream failed: {e}"),
            Err(_) => break,
        }
    }
    assert!(
        accepted <= CONTROL_WINDOW as usize,
        "the relay let a waiting client send {accepted} bytes"
    );
    assert!(accepted > 0, "the control stream took nothing at all");
}

#[tokio::test]
async fn the_metrics_endpoint_refuses_past_its_cap_and_serves_again() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&[
        "--metrics",
        &metrics.to_string(),
        "--metrics-connections",
        "4",
    ]);
    // Wait until the endpoint serves at all.
    scrape(metrics).await;

    // Four clients that connect and say nothing take every place...
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(metrics).await.unwrap());
    }
    // ...so the next is answered at once with 503 rather than made to wait.
    let started = Instant::now();
    match http_get(metrics).await {
        Ok(answer) => assert!(answer.starts_with("HTTP/1.1 503"), "{answer}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "refused slowly");

    // The idle clients do not hold their places for ever: without closing
    // them, the endpoint serves again after its read timeout.
    let text = scrape(metrics).await;
    assert!(limited(&text, "MetricsConnections") >= 1, "{text}");
    assert!(text.contains("sprijin_relay_connections_total"), "{text}");
    // And the relay itself kept serving.
    let target = Target::of(&relay);
    let mut agent = target.control(LOCAL, Role::Agent).await;
    assert!(matches!(agent.open().await, RelayMsg::Opened { .. }));
    drop(idle);
}

/// Sends the presentation of `ticket` from `socket` and answers the relay's
/// challenge, as a client does; returns once the relay has heard it.
fn bind_raw(socket: &std::net::UdpSocket, relay: SocketAddr, ticket: &sprijin_proto::path::Ticket) {
    use sprijin_proto::path::wire;
    let p = wire::presentation(&ticket.token, &ticket.key, 1).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..10 {
        socket.send_to(&p, relay).unwrap();
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && let wire::Datagram::Challenge { nonce, .. } = wire::parse(&buf[..n])
        {
            let e = wire::echo(&ticket.token, &ticket.key, nonce).unwrap();
            socket.send_to(&e, relay).unwrap();
            return;
        }
    }
}

/// The relay process's resident memory now (`VmRSS`), in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Datagrams of each kind a flood sends, and their size: as large as one
/// UDP datagram on loopback may be.
const FLOOD: usize = 8_000;
const FLOOD_SIZE: usize = 60_000;

/// The first bytes of the flood's QUIC-like datagrams, one sender each:
/// a short header, and long headers of version 1 (Initial, Handshake).
const FLOOD_FIRST_BYTES: [u8; 3] = [0x40, 0xc0, 0xe0];

/// How much a flood may grow the relay's peak memory: its read buffers
/// being touched for the first time (2 MiB), with room to spare. A relay
/// that copies each large datagram for its endpoint grows by tens of MiB
/// under this flood, and by hundreds when its endpoint falls behind.
const FLOOD_GROWTH_KIB: u64 = 8 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_large_datagrams_leave_the_relay_small() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let pid = relay.proc.child.id();
    let addr: SocketAddr = relay.addr.parse().unwrap();
    // A paired session whose console never presents: what the agent's
    // side sends for it can only be held.
    let tickets =
        sprijin_tests::bench::relayed::pair(&relay.addr, relay.fingerprint.parse().unwrap())
            .await
            .expect("pair through the relay");
    let before = rss_kib(pid);
    let agent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    bind_raw(&agent, addr, &tickets.agent);
    let fields = sprijin_proto::path::wire::read_token(&tickets.agent.token).unwrap();
    let mut held = sprijin_proto::path::wire::data_header(fields.session, fields.side).to_vec();
    held.resize(FLOOD_SIZE, 0x40);
    let agent = std::sync::Arc::new(agent);
    let mut floods = Vec::new();
    for first in FLOOD_FIRST_BYTES {
        let agent = agent.clone();
        let held = held.clone();
        floods.push(std::thread::spawn(move || {
            // QUIC's fixed bit, short or long header, but not QUIC.
            let mut quic_like = vec![first; FLOOD_SIZE];
            quic_like[1..5].copy_from_slice(&1u32.to_be_bytes());
            let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            for _ in 0..FLOOD {
                let _ = other.send_to(&quic_like, addr);
                let _ = agent.send_to(&held, addr);
            }
        }));
    }
    for f in floods {
        f.join().unwrap();
    }
    // The relay has read what it could once its metrics answer again.
    let text = scrape(metrics).await;
    let peak = peak_rss_kib(pid).expect("the relay's peak memory");
    let now = rss_kib(pid);
    eprintln!(
        "the relay's memory: {before} KiB before the flood, a peak of {peak} KiB, {now} KiB after"
    );
    assert!(
        peak.saturating_sub(before) <= FLOOD_GROWTH_KIB,
        "the relay grew from {before} KiB to a peak of {peak} KiB (now {now} KiB)"
    );
    assert!(
        text.contains("sprijin_relay_datagrams_dropped_total{reason=\"oversize\"}"),
        "{text}"
    );
    // It still serves.
    let mut agent = Target::of(&relay).control(LOCAL, Role::Agent).await;
    assert!(matches!(agent.open().await, RelayMsg::Opened { .. }));
}

/// Whether `d` is a QUIC Retry packet (version 1: long header, type 3).
fn is_retry(d: &[u8]) -> bool {
    d.first()
        .is_some_and(|b| b & 0x80 != 0 && (b >> 4) & 0x03 == 0x03)
}

/// How long the proxy keeps back a client's retried Initial: longer than
/// quinn's default retry-token lifetime of 15 s, as when a busy relay or a
/// lossy path makes a client send its Initial again and again.
const INITIAL_HELD: Duration = Duration::from_secs(16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_connection_is_admitted_however_late_its_initial_arrives() {
    // Past half its share of connections, an address must pass a retry.
    let relay = RelayProc::start(&["--connections-per-address", "2"]);
    let target = Target::of(&relay);
    let mut held = target.control(LOCAL, Role::Agent).await;
    assert!(matches!(held.open().await, RelayMsg::Opened { .. }));

    // A path between a client and the relay that, after the relay's Retry,
    // keeps the client's next datagram back and loses its repeats.
    let proxy = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let relay_addr = target.addr;
    let retried = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw_retry = retried.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut client = None;
        let mut retry_at = None;
        let mut kept: Option<Vec<u8>> = None;
        proxy
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        loop {
            if let (Some(at), Some(to)) = (retry_at, client)
                && std::time::Instant::now().duration_since(at) >= INITIAL_HELD
                && let Some(d) = kept.take()
            {
                let _ = proxy.send_to(&d, relay_addr);
                let _ = to;
            }
            let Ok((n, from)) = proxy.recv_from(&mut buf) else {
                continue;
            };
            if from == relay_addr {
                if is_retry(&buf[..n]) && retry_at.is_none() {
                    retry_at = Some(std::time::Instant::now());
                    saw_retry.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if let Some(to) = client {
                    let _ = proxy.send_to(&buf[..n], to);
                }
                continue;
            }
            client = Some(from);
            match retry_at {
                Some(at) if std::time::Instant::now().duration_since(at) < INITIAL_HELD => {
                    if kept.is_none() {
                        kept = Some(buf[..n].to_vec());
                    }
                }
                _ => {
                    let _ = proxy.send_to(&buf[..n], relay_addr);
                }
            }
        }
    });

    let (config, _) = tls::client_config(Some(target.pin)).unwrap();
    let mut endpoint = quinn::Endpoint::client(SocketAddr::new(LOCAL, 0)).unwrap();
    endpoint.set_default_client_config(config);
    let connecting = endpoint.connect(proxy_addr, "localhost").unwrap();
    let result = tokio::time::timeout(INITIAL_HELD + STEP, connecting)
        .await
        .expect("the connection attempt ends in time");
    assert!(
        retried.load(std::sync::atomic::Ordering::SeqCst),
        "the relay did not ask for a retry"
    );
    let connection = result.expect("the retried connection is admitted");
    connection.close(0u32.into(), b"done");
    drop(held);
}
