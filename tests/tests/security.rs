//! Security end to end: the relay forwards only datagrams it cannot read
//! (no session content, no password word); a malicious relay that pairs
//! each side with its own endpoint and runs the key exchange with a guessed
//! password gets nothing but a wrong code on both sides, and the code is
//! burnt; the relay refuses what it must (too many claims from one address,
//! consoles without a listed token) while it serves everyone else.
//!
//! Agent and console are always the real programs. The honest relay is the
//! real program too; a recording relay is built in-process from the relay
//! library with its datagram `tap`, and the malicious relay is a fake one
//! made of the relay's forwarder, a control endpoint of its own and two
//! session endpoints of its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sprijin_proto::code::{Nameplate, SessionCode};
use sprijin_proto::codec;
use sprijin_proto::framing::{FrameReader, FrameWriter};
use sprijin_proto::message::control::{ClientMsg, ErrorCode, ErrorFrame, Hello, RelayMsg, Role};
use sprijin_proto::message::session::AgentMsg;
use sprijin_proto::tls::{self, Fingerprint};
use sprijin_proto::words::WORDS;
use sprijin_relay::forward::{Direction, Tap};
use sprijin_relay::{Relay, RelayConfig};
use sprijin_tests::*;
use tokio::io::AsyncWriteExt;

/// How long a program may take to end once its session is over: generous
/// for a loaded machine, yet under the connections' 30 s idle timeout, so a
/// side that is only noticed gone when that timeout runs out fails the test.
const END: Duration = Duration::from_secs(20);

/// A relay the test runs in-process, so it can record or tamper with what
/// it forwards. It stops when dropped.
struct LocalRelay {
    addr: String,
    fingerprint: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl LocalRelay {
    /// Binds a relay on 127.0.0.1 with a random port and a fresh identity,
    /// after `configure` set its hooks, and serves it on its own runtime.
    fn start(configure: impl FnOnce(&mut RelayConfig)) -> LocalRelay {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut config = RelayConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().join("relay"));
        configure(&mut config);
        let relay = {
            let _in_runtime = runtime.enter();
            Relay::bind(config).expect("bind the in-process relay")
        };
        let addr = relay.local_addr().unwrap().to_string();
        let fingerprint = relay.fingerprint().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        runtime.spawn(relay.run(async {
            let _ = stopped.await;
        }));
        LocalRelay {
            addr,
            fingerprint,
            stop: Some(stop),
            runtime: Some(runtime),
            _dir: dir,
        }
    }

    fn agent(&self, answers: &[&str], extra: &[&str]) -> AgentProc {
        AgentProc::start_at(&self.addr, &self.fingerprint, answers, extra)
    }

    fn agent_trusting(&self, answers: &[&str]) -> AgentProc {
        let key = dev_public_key();
        self.agent(answers, &["--trusted-key", key.to_str().unwrap()])
    }

    fn console(&self, code: &str, args: &[&str]) -> ConsoleOutput {
        console_at(&self.addr, &self.fingerprint, code, args)
    }
}

impl Drop for LocalRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// The same nameplate with two other words: a guess at the password.
fn wrong_password(code: &SessionCode) -> SessionCode {
    let real: Vec<&str> = code.password().words().collect();
    let mut others = WORDS.iter().filter(|w| !real.contains(w));
    let (a, b) = (others.next().unwrap(), others.next().unwrap());
    format!("{}-{a}-{b}", code.nameplate()).parse().unwrap()
}

/// Asserts that the console failed and said why in one line: no panic, no
/// backtrace, no second message.
fn assert_clean_failure(out: &ConsoleOutput, expected: &str) {
    assert!(
        !out.status.success(),
        "the console should fail:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_no_panic(&out.stderr);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "expected one error line, got:\n{}",
        out.stderr
    );
    assert!(
        lines[0].contains(expected),
        "expected {expected:?} in: {}",
        lines[0]
    );
}

// ---------------------------------------------------------------------------
// What the relay sees

/// Every byte the relay forwarded, per direction.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<[Vec<u8>; 2]>>);

impl Recording {
    fn index(dir: Direction) -> usize {
        match dir {
            Direction::AgentToConsole => 0,
            Direction::ConsoleToAgent => 1,
        }
    }

    fn tap(&self) -> Tap {
        let recording = self.clone();
        Arc::new(move |dir, bytes| {
            recording.0.lock().unwrap()[Self::index(dir)].extend_from_slice(bytes);
        })
    }

    fn bytes(&self, dir: Direction) -> Vec<u8> {
        self.0.lock().unwrap()[Self::index(dir)].clone()
    }
}

/// Random bytes hold a given 2-byte string about once in 64 KiB and a 3-byte
/// one once in 16 MiB, so over the tens of kilobytes a session sends, needles
/// that short would now and then be found in the ciphertext by chance (a
/// host called `vm`, a three-letter password word). Such secrets are looked
/// for only as a plaintext message would carry them (see [`clear_forms`]).
const MIN_NEEDLE: usize = 4;

/// The ways `text` would show up in a plaintext session message: as is, and
/// as an encoded string field (a length prefix, then the bytes), keeping
/// only the forms long enough to mean something.
fn clear_forms(text: &str) -> Vec<Vec<u8>> {
    [
        text.as_bytes().to_vec(),
        codec::encode(&text.to_string()).unwrap(),
    ]
    .into_iter()
    .filter(|form| form.len() >= MIN_NEEDLE)
    .collect()
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn this_host_name() -> String {
    let out = std::process::Command::new("hostname")
        .output()
        .expect("run hostname");
    assert!(out.status.success(), "hostname failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn session_content_and_password_never_cross_the_relay_in_clear() {
    let recording = Recording::default();
    let relay = LocalRelay::start(|config| config.tap = Some(recording.tap()));
    let mut agent = relay.agent_trusting(&["y", "y"]);
    let marker = "quokkazanzibar";
    let catalog = sample_catalog();
    let run = format!("run echo-test word={marker}");
    let out = relay.console(
        &agent.code,
        &[
            "--catalog",
            catalog.to_str().unwrap(),
            "--exec",
            &run,
            "--exec",
            "diag",
            "--exec",
            "quit",
        ],
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let status = wait_end(&mut agent.proc, END, "the agent");
    assert!(status.success(), "{}", agent.proc.stderr.text());

    // The content really crossed: the script's output and the host name.
    let host = this_host_name();
    assert!(
        out.stdout.contains(&format!("sprijin {marker}")),
        "the run's output did not reach the console:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("connected to {host} ")),
        "{}",
        out.stdout
    );

    let code: SessionCode = agent.code.parse().unwrap();
    let mut secrets: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |what: &str, text: &str| {
        for form in clear_forms(text) {
            secrets.push((format!("{what} {text:?}"), form));
        }
    };
    add("the marker", marker);
    add("the code", &agent.code);
    add("the password", code.password().as_str());
    for word in code.password().words() {
        add("a password word", word);
    }
    add("the host name", &host);
    // The agent's welcome as it is framed inside the session (before QUIC
    // encrypts it): it names the host, so it is a long needle even for a
    // short host name.
    let welcome = codec::encode(&AgentMsg::Welcome {
        host: host.clone(),
        granted: true,
    })
    .unwrap();
    secrets.push(("the agent's welcome message in clear".into(), welcome));

    for dir in [Direction::AgentToConsole, Direction::ConsoleToAgent] {
        let seen = recording.bytes(dir);
        assert!(
            seen.len() >= 1024,
            "the relay forwarded only {} bytes {dir:?}",
            seen.len()
        );
        for (what, needle) in &secrets {
            assert_eq!(
                position(&seen, needle),
                None,
                "{what} crossed the relay in clear {dir:?} ({} bytes seen)",
                seen.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// A relay in the middle

/// A malicious relay: it speaks the rendezvous protocol, then pairs the
/// agent with its own console endpoint and the console with its own agent
/// endpoint (tickets of two different sessions on its own forwarder), and
/// runs the handshake on both with a guessed password.
struct MaliciousRelay {
    addr: String,
    fingerprint: String,
    /// How its own two handshakes ended, by the role it played.
    outcomes: Arc<Mutex<Vec<(Role, String)>>>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl MaliciousRelay {
    fn start(guess: impl Fn(Nameplate) -> SessionCode + Send + Sync + 'static) -> MaliciousRelay {
        use sprijin_proto::path::wire::{Side as PathSide, TicketMint};
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let identity = sprijin_relay::identity::load_or_create(dir.path()).unwrap();
        let fingerprint = identity.fingerprint().to_string();
        let mint = TicketMint::new([0x42; 32]);
        let outcomes: Arc<Mutex<Vec<(Role, String)>>> = Arc::default();
        let (endpoint, addr) = {
            let _in_runtime = runtime.enter();
            let (forwarder, socket) = sprijin_relay::forward::bind(
                "127.0.0.1:0".parse().unwrap(),
                sprijin_relay::forward::ForwardOptions {
                    mint: mint.clone(),
                    bytes_per_sec: None,
                    idle_timeout: Duration::from_secs(60),
                    max_sessions: 100,
                    tap: None,
                    metrics: Arc::default(),
                    parked: Arc::new(sprijin_relay::parked::Parked::new(
                        sprijin_proto::waiting::WaitingKey::from_bytes([0x43; 32]),
                    )),
                    arrivals: Arc::default(),
                },
            )
            .unwrap();
            let mut endpoint_config = quinn::EndpointConfig::default();
            endpoint_config.grease_quic_bit(false);
            let endpoint = quinn::Endpoint::new_with_abstract_socket(
                endpoint_config,
                Some(tls::server_config(identity.cert, identity.key).unwrap()),
                Arc::new(socket),
                Arc::new(quinn::TokioRuntime),
            )
            .unwrap();
            let addr = endpoint.local_addr().unwrap();
            runtime.spawn(forwarder.run());
            (endpoint, addr)
        };
        let seen = outcomes.clone();
        runtime.spawn(async move {
            let nameplate = Nameplate::new(7).unwrap();
            // The agent opens, then waits apart: its waits find no code
            // here, so it comes back with its ticket. The console claims
            // meanwhile, in either order. All stay connected.
            {
                let conn = endpoint.accept().await.unwrap().await.unwrap();
                let (send, recv) = conn.accept_bi().await.unwrap();
                let mut reader = FrameReader::control(recv);
                let _: Hello = reader.expect_msg().await.unwrap();
                let _: ClientMsg = reader.expect_msg().await.unwrap();
                let mut send = FrameWriter::new(send);
                send.write_msg(&RelayMsg::Opened {
                    nameplate,
                    expires_in_secs: 600,
                    ticket: sprijin_proto::waiting::WaitingKey::from_bytes([0x43; 32])
                        .issue(nameplate, u64::MAX),
                })
                .await
                .unwrap();
                // The agent closes it once it has its code.
                conn.closed().await;
            }
            let (mut agent, mut console) = (None, None);
            while agent.is_none() || console.is_none() {
                let conn = endpoint.accept().await.unwrap().await.unwrap();
                let (send, recv) = conn.accept_bi().await.unwrap();
                let mut reader = FrameReader::control(recv);
                let hello: Hello = reader.expect_msg().await.unwrap();
                let _: ClientMsg = reader.expect_msg().await.unwrap();
                let held = Some((conn, FrameWriter::new(send)));
                match hello.role {
                    Role::Agent => agent = held,
                    Role::Console => console = held,
                }
            }
            let (Some((agent_conn, mut agent_send)), Some((console_conn, mut console_send))) =
                (agent, console)
            else {
                unreachable!("both are connected")
            };
            let expires = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 3600;
            // Session 1: the agent and the relay's console endpoint.
            // Session 2: the relay's agent endpoint and the console.
            let to_agent = mint.issue(1, PathSide::Agent, expires);
            let own_console = mint.issue(1, PathSide::Console, expires);
            let own_agent = mint.issue(2, PathSide::Agent, expires);
            let to_console = mint.issue(2, PathSide::Console, expires);
            agent_send
                .write_msg(&RelayMsg::Paired {
                    technician: Some(sprijin_proto::message::control::Technician {
                        name: "Ana".into(),
                        vouched: false,
                    }),
                    ticket: to_agent,
                })
                .await
                .unwrap();
            console_send
                .write_msg(&RelayMsg::Paired {
                    technician: None,
                    ticket: to_console,
                })
                .await
                .unwrap();
            let code = guess(nameplate);
            let as_console = play_console(addr, own_console, code.clone(), seen.clone());
            let as_agent = play_agent(addr, own_agent, code, seen.clone());
            tokio::join!(as_console, as_agent);
            // Keep the control connections until the clients close them.
            let _ = tokio::time::timeout(END, agent_conn.closed()).await;
            let _ = tokio::time::timeout(END, console_conn.closed()).await;
        });
        MaliciousRelay {
            addr: addr.to_string(),
            fingerprint,
            outcomes,
            runtime: Some(runtime),
            _dir: dir,
        }
    }
}

impl Drop for MaliciousRelay {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn describe(
    result: &Result<sprijin_proto::e2e::Established, sprijin_proto::e2e::E2eError>,
) -> String {
    match result {
        Ok(_) => "established".into(),
        Err(e) if e.is_wrong_code() => "wrong code".into(),
        Err(e) => format!("failed: {e}"),
    }
}

/// The relay's own console endpoint, towards the real agent.
async fn play_console(
    relay: SocketAddr,
    ticket: sprijin_proto::path::Ticket,
    guess: SessionCode,
    outcomes: Arc<Mutex<Vec<(Role, String)>>>,
) {
    let identity = tls::SessionIdentity::generate().unwrap();
    let client = tls::session_client_config(&identity, Duration::from_secs(30)).unwrap();
    let path = sprijin_proto::path::RelayedPath::new(relay, ticket, None).unwrap();
    let connection = path
        .endpoint()
        .connect_with(client, path.relay(), "sprijin-session")
        .unwrap()
        .await
        .unwrap();
    let result = sprijin_proto::e2e::establish(Role::Console, &guess, connection, &identity).await;
    outcomes
        .lock()
        .unwrap()
        .push((Role::Console, describe(&result)));
    let _ = tokio::time::timeout(END, path.endpoint().wait_idle()).await;
}

/// The relay's own agent endpoint, towards the real console.
async fn play_agent(
    relay: SocketAddr,
    ticket: sprijin_proto::path::Ticket,
    guess: SessionCode,
    outcomes: Arc<Mutex<Vec<(Role, String)>>>,
) {
    let identity = tls::SessionIdentity::generate().unwrap();
    let server = tls::session_server_config(&identity, Duration::from_secs(30)).unwrap();
    let path = sprijin_proto::path::RelayedPath::new(relay, ticket, Some(server)).unwrap();
    let connection = path.endpoint().accept().await.unwrap().await.unwrap();
    let result = sprijin_proto::e2e::establish(Role::Agent, &guess, connection, &identity).await;
    outcomes
        .lock()
        .unwrap()
        .push((Role::Agent, describe(&result)));
    let _ = tokio::time::timeout(END, path.endpoint().wait_idle()).await;
}

#[test]
fn a_relay_in_the_middle_with_a_guessed_password_fails_and_burns_the_code() {
    // The agent's code is made before the relay knows it; the relay can
    // only guess the words, and the agent's code is read from its output.
    let relay = MaliciousRelay::start(|nameplate| {
        format!("{nameplate}-{}-{}", WORDS[0], WORDS[1])
            .parse()
            .unwrap()
    });
    let mut agent = AgentProc::start_at(&relay.addr, &relay.fingerprint, &["y"], &[]);
    let code: SessionCode = agent.code.parse().unwrap();
    let out = console_at(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &["--exec", "quit"],
    );
    // In the unlikely case the agent's words were the guess, the relay
    // would have won its one online guess; that is the design's bound.
    if code.password().as_str() == format!("{}-{}", WORDS[0], WORDS[1]) {
        return;
    }
    assert_clean_failure(&out, "the code was wrong");
    let status = wait_end(&mut agent.proc, END, "the agent");
    assert!(!status.success(), "the agent should fail");
    let said = agent.proc.stdout.text();
    assert!(
        said.contains("someone tried to connect with a wrong code"),
        "{said}"
    );
    assert!(said.contains("this code no longer works"), "{said}");
    assert!(!said.contains("connected: "), "{said}");
    assert_no_panic(&agent.proc.stderr.text());
    // The agent recorded the refusal and never started a session.
    let kinds = audit_kinds(agent.data_dir.path());
    assert!(!kinds.iter().any(|k| k == "session_start"), "{kinds:?}");
    let notes = audit_events(agent.data_dir.path(), "note");
    assert!(
        notes
            .iter()
            .any(|n| n.to_string().contains("wrong code was refused")),
        "{notes:?}"
    );

    // The relay learnt nothing either: both its own handshakes failed.
    let deadline = std::time::Instant::now() + END;
    while relay.outcomes.lock().unwrap().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut seen = relay.outcomes.lock().unwrap().clone();
    seen.sort_by_key(|(role, _)| format!("{role:?}"));
    assert_eq!(
        seen,
        vec![
            (Role::Agent, "wrong code".to_string()),
            (Role::Console, "wrong code".to_string())
        ]
    );
}

// ---------------------------------------------------------------------------
// A wrong code

#[test]
fn right_nameplate_wrong_password_is_refused_and_burns_the_code() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let code: SessionCode = agent.code.parse().unwrap();
    let wrong = wrong_password(&code).to_string();

    let out = console(&relay, &wrong, &["--exec", "quit"]);
    assert_clean_failure(&out, "the code was wrong");
    let status = wait_end(&mut agent.proc, END, "the agent");
    assert!(!status.success(), "the agent should fail");
    assert!(
        agent
            .proc
            .stdout
            .text()
            .contains("someone tried to connect with a wrong code"),
        "{}",
        agent.proc.stdout.text()
    );
    assert_no_panic(&agent.proc.stderr.text());

    let again = console(&relay, &agent.code, &["--exec", "quit"]);
    assert_clean_failure(&again, "already used");
}

// ---------------------------------------------------------------------------
// Altered datagrams

/// A UDP path in front of the real relay that flips one bit in about one
/// datagram in `every` it carries, either way, as a malicious relay or a
/// network could. Each client address gets a socket of its own towards the
/// relay, so the relay sees one address per client. Returns the address
/// clients use and how many datagrams were altered.
/// Datagrams through the altering path before it starts altering: the
/// control connections' and the session's handshakes.
const SPARED: u64 = 60;

fn altering_path(relay: SocketAddr, every: u64) -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    let front = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = front.local_addr().unwrap();
    let altered = Arc::new(AtomicU64::new(0));
    let count = Arc::new(AtomicU64::new(0));
    let front = Arc::new(front);
    let seen = altered.clone();
    std::thread::spawn(move || {
        let mut upstream: HashMap<SocketAddr, Arc<std::net::UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((n, from)) = front.recv_from(&mut buf) else {
                return;
            };
            let socket = upstream.entry(from).or_insert_with(|| {
                let socket = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
                // The relay's answers go back to this client.
                let (back, front, count, seen) =
                    (socket.clone(), front.clone(), count.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 65_536];
                    while let Ok(n) = back.recv(&mut buf) {
                        alter(&mut buf[..n], &count, &seen, every);
                        let _ = front.send_to(&buf[..n], from);
                    }
                });
                socket
            });
            alter(&mut buf[..n], &count, &seen, every);
            let _ = socket.send_to(&buf[..n], relay);
        }
    });
    fn alter(d: &mut [u8], count: &AtomicU64, seen: &AtomicU64, every: u64) {
        // Past the first 64 bytes: the encrypted part of a QUIC packet. The
        // datagrams are picked by a hash of their number, so no packet is
        // hit on every retransmission, as a strict rhythm could do. The
        // connections' handshakes are left alone: losses there back off for
        // seconds each, and a loaded machine then misses the set-up time.
        let n = count.fetch_add(1, Ordering::Relaxed);
        let picked =
            n >= SPARED && (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40).is_multiple_of(every);
        if d.len() > 64 && picked {
            let at = d.len() / 2;
            d[at] ^= 0x01;
            seen.fetch_add(1, Ordering::Relaxed);
        }
    }
    (addr, altered)
}

#[test]
fn altered_datagrams_are_dropped_and_the_session_content_arrives_intact() {
    let relay = RelayProc::start(&[]);
    let relay_addr: SocketAddr = relay.addr.parse().unwrap();
    let (path, altered) = altering_path(relay_addr, 10);
    let path = path.to_string();
    let key = dev_public_key();
    // The session stays on the altered path.
    let mut agent = AgentProc::start_at(
        &path,
        &relay.fingerprint,
        &["y", "y"],
        &["--trusted-key", key.to_str().unwrap(), "--direct", "never"],
    );
    let marker = "wombatkilimanja";
    let catalog = sample_catalog();
    let run = format!("run echo-test word={marker}");
    let out = console_at(
        &path,
        &relay.fingerprint,
        &agent.code,
        &[
            "--catalog",
            catalog.to_str().unwrap(),
            "--exec",
            &run,
            "--exec",
            "diag",
            "--exec",
            "processes",
            "--exec",
            "diag",
            "--exec",
            "quit",
        ],
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!("sprijin {marker}")),
        "the run's output did not arrive intact:\n{}",
        out.stdout
    );
    let status = wait_end(&mut agent.proc, END, "the agent");
    assert!(status.success(), "{}", agent.proc.stdout.text());
    assert!(
        altered.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "nothing was altered"
    );
    // The agent recorded the run as it happened, once.
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1, "{:?}", audit_kinds(agent.data_dir.path()));
    let session_end = audit_events(agent.data_dir.path(), "session_end");
    let reason = session_end[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the technician ended the session"),
        "{reason}"
    );
}

// ---------------------------------------------------------------------------
// What the relay refuses

/// Claims `nameplate` from `from` with a hand-made client and returns the
/// relay's refusal.
async fn claim(relay: SocketAddr, pin: Fingerprint, from: IpAddr, nameplate: u32) -> ErrorFrame {
    let (config, _) = tls::client_config(Some(pin)).unwrap();
    let mut endpoint = quinn::Endpoint::client(SocketAddr::new(from, 0))
        .unwrap_or_else(|e| panic!("bind a client on {from}: {e}"));
    endpoint.set_default_client_config(config);
    let connection = endpoint
        .connect(relay, "localhost")
        .unwrap()
        .await
        .expect("connect to the relay");
    let (send, recv) = connection.open_bi().await.unwrap();
    let mut writer = FrameWriter::new(send);
    writer.write_msg(&Hello::new(Role::Console)).await.unwrap();
    writer
        .write_msg(&ClientMsg::Claim {
            nameplate: Nameplate::new(nameplate).unwrap(),
            technician: "probe".into(),
            token: None,
        })
        .await
        .unwrap();
    let mut reader = FrameReader::new(recv);
    let reply = tokio::time::timeout(STEP, reader.expect_msg::<RelayMsg>()).await;
    connection.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(STEP, endpoint.wait_idle()).await;
    match reply {
        Ok(Ok(RelayMsg::Error(frame))) => frame,
        other => panic!("expected a refusal for nameplate {nameplate}, got {other:?}"),
    }
}

/// A local TCP address nothing listens on right now.
fn free_tcp_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn scrape(metrics: SocketAddr) -> String {
    use tokio::io::AsyncReadExt;
    let mut socket = tokio::net::TcpStream::connect(metrics).await.unwrap();
    socket
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(STEP, socket.read_to_string(&mut text))
        .await
        .expect("the metrics endpoint answers")
        .unwrap();
    text
}

/// The value of one sample in the Prometheus text, e.g.
/// `sprijin_relay_refusals_total{reason="RateLimited"}`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.trim();
        value.split_whitespace().next()?.parse().ok()
    })
}

#[tokio::test]
async fn the_eleventh_claim_in_a_minute_from_one_address_is_refused_while_others_are_served() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let addr: SocketAddr = relay.addr.parse().unwrap();
    let pin: Fingerprint = relay.fingerprint.parse().unwrap();
    let one: IpAddr = "127.0.0.1".parse().unwrap();
    let other: IpAddr = "127.0.0.2".parse().unwrap();

    for n in 1..=10 {
        let refusal = claim(addr, pin, one, 900_000 + n).await;
        assert_eq!(
            refusal.code,
            ErrorCode::UnknownNameplate,
            "claim {n}: {}",
            refusal.message
        );
    }
    let refusal = claim(addr, pin, one, 900_011).await;
    assert_eq!(refusal.code, ErrorCode::RateLimited, "{}", refusal.message);
    assert!(
        refusal.message.contains("wait"),
        "the refusal says to wait: {}",
        refusal.message
    );
    // Another address is still served.
    let refusal = claim(addr, pin, other, 900_012).await;
    assert_eq!(
        refusal.code,
        ErrorCode::UnknownNameplate,
        "{}",
        refusal.message
    );

    let text = scrape(metrics).await;
    assert_eq!(
        sample(
            &text,
            r#"sprijin_relay_refusals_total{reason="RateLimited"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"sprijin_relay_refusals_total{reason="UnknownNameplate"}"#
        ),
        Some(11.0),
        "{text}"
    );
    assert_no_panic(&relay.proc.stderr.text());
}

#[test]
fn console_tokens_restrict_who_may_claim() {
    const TOKEN: &str = "3f9c1e7a5b2d4c6e8a0b";
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("console-tokens");
    std::fs::write(
        &tokens,
        format!("# technicians allowed to claim\nAna Pop {TOKEN}\nBo Ilie 0123456789abcdefXYZ\n"),
    )
    .unwrap();
    let relay = RelayProc::start(&["--console-tokens", tokens.to_str().unwrap()]);
    let connect = |code: &str, extra: &[&str]| {
        let mut args = vec!["--name", "Mallory", "--exec", "quit"];
        args.extend(extra);
        console_command(&relay.addr, &relay.fingerprint, code, &args)
    };

    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let out = run_to_end(connect(&agent.code, &[]));
    assert_clean_failure(&out, "token is missing");
    assert!(out.stderr.contains("--token"), "{}", out.stderr);
    let out = run_to_end(connect(
        &agent.code,
        &["--token", "not-a-listed-token-0000"],
    ));
    assert_clean_failure(&out, "token is not on this relay's list");

    // Refused claims do not burn the code: a listed technician gets in, and
    // the person sees the name on file, not the one the console gave. The
    // relay's list is access control, not identity: without a credential
    // the name is shown as not verified.
    let out = run_to_end(connect(&agent.code, &["--token", TOKEN]));
    assert!(out.status.success(), "{}", out.stderr);
    wait_end(&mut agent.proc, END, "the agent");
    let shown = agent.proc.stdout.text();
    assert!(
        shown.contains("connected: technician Ana Pop (name not verified: no credential)"),
        "{shown}"
    );
    assert!(!shown.contains("Mallory"), "{shown}");
    assert!(!shown.contains("vouched"), "{shown}");

    // The token may come from the environment too.
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let mut cmd = connect(&agent.code, &[]);
    cmd.env("SPRIJIN_TOKEN", TOKEN);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", out.stderr);
    wait_end(&mut agent.proc, END, "the agent");
    let shown = agent.proc.stdout.text();
    assert!(
        shown.contains("connected: technician Ana Pop (name not verified: no credential)"),
        "{shown}"
    );
}
