//! The relay stays small under abuse: a real relay on 127.0.0.1 faced with
//! a hostile client built here from quinn and proto's framing. Each limit
//! refuses what it must, says so (an error frame or a refused connection),
//! counts it in the metrics, and the relay keeps serving everyone else.

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
