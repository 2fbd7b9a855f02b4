//! A waiting code survives a relay restart: the agent reconnects by itself
//! and presents its waiting ticket, and the restarted relay makes the same
//! nameplate wait again. A ticket the relay did not issue, or one that has
//! expired, is refused with a clear error.
//!
//! A waiting agent holds no connection at the relay: it keeps its code
//! with MACed wait datagrams, which the relay answers only when they are
//! its own tickets' and new; a claim reaches the agent as a datagram that
//! carries its side of the session, sealed for it, and an agent that did
//! not hear comes back with its ticket for the same. A person who stops sharing
//! ends the code at once; an agent killed while it waits leaves the
//! console a plain refusal.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sprijin_proto::client::{LinkError, RelayLink};
use sprijin_proto::code::Nameplate;
use sprijin_proto::message::control::{ClientMsg, ErrorCode, RelayMsg, Role, close_code};
use sprijin_proto::waiting::{Answer, Held, WaitingKey, WaitingTicket};
use sprijin_tests::metrics::{free_tcp_addr, parked, value, wait_metric};
use sprijin_tests::*;
use tokio::net::UdpSocket;

/// A control link to `relay` in `role`, with its pin.
async fn link_to(relay: &RelayProc, role: Role) -> RelayLink {
    RelayLink::connect(&relay.addr, Some(relay.fingerprint.parse().unwrap()), role)
        .await
        .unwrap()
}

/// Presents `ticket` to `relay` as a returning agent; the relay's answer.
async fn present(relay: &RelayProc, ticket: WaitingTicket) -> Result<RelayMsg, LinkError> {
    let mut link = link_to(relay, Role::Agent).await;
    link.writer
        .write_msg(&ClientMsg::Reopen { ticket })
        .await
        .unwrap();
    tokio::time::timeout(STEP, link.answer()).await.unwrap()
}

#[test]
fn a_waiting_agent_holds_no_connection_and_its_code_still_pairs() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    parked(metrics, 1);
    ana_connects_once(&relay, &mut agent);
    let text = wait_metric(metrics, "sprijin_relay_sessions_total", 1);
    assert_eq!(
        value(&text, "sprijin_relay_nameplates_waiting"),
        0,
        "{text}"
    );
    // The agent's code, and the console's claim: the claim's answer to
    // the agent's wait carried its side of the session, so it did not
    // connect again to be paired.
    assert_eq!(value(&text, "sprijin_relay_connections_total"), 2, "{text}");
}

#[test]
fn a_person_who_stops_sharing_ends_the_code_at_once() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let mut agent = AgentProc::start(&relay, &[], &[]);
    parked(metrics, 1);
    agent.proc.interrupt();
    wait_end(&mut agent.proc, STEP, "the agent after Ctrl-C");
    // Its leaving reached the relay: the code is gone well before the
    // relay would miss the agent's waits.
    parked(metrics, 0);
    let out = console(&relay, &agent.code, &["--exec", "quit"]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("stopped sharing"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_claim_for_an_agent_killed_while_waiting_is_refused_plainly() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    parked(metrics, 1);
    let pid = agent.proc.child.id();
    agent.proc.child.kill().unwrap(); // SIGKILL: no word to the relay
    assert!(wait_until_gone(pid, STEP), "the agent did not die");
    let started = Instant::now();
    let out = console(&relay, &agent.code, &["--exec", "quit"]);
    assert!(!out.status.success(), "{}", out.stdout);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    // The relay's word, heard while the console's set-up waited.
    assert!(
        out.stderr.contains("did not come for the claim"),
        "{}",
        out.stderr
    );
    assert_no_panic(&out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the console waited {:?}",
        started.elapsed()
    );
    // The relay serves the next person.
    let mut next = AgentProc::start(&relay, &["y"], &[]);
    let out = console(&relay, &next.code, &["--exec", "quit"]);
    assert!(out.status.success(), "{}", out.stderr);
    agent_finishes(&mut next.proc);
}

#[test]
fn a_waiting_agent_notices_a_paused_relay_and_keeps_its_code_when_it_resumes() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    parked(metrics, 1);
    let pid = relay.proc.child.id().to_string();
    let signal = |which: &str| {
        let sent = Command::new("kill").args([which, &pid]).status().unwrap();
        assert!(sent.success(), "kill {which} failed");
    };
    signal("-STOP");
    // No answer to its waits for 30 s: the agent says so and tries again.
    let lost = agent
        .proc
        .stdout
        .wait_for("the relay stopped answering", Duration::from_secs(45));
    signal("-CONT");
    assert!(
        lost.is_some(),
        "the agent did not notice: {}",
        agent.proc.stdout.text()
    );
    agent
        .proc
        .stdout
        .wait_for("reconnected to relay", STEP)
        .unwrap_or_else(|| panic!("agent did not come back: {}", agent.proc.stdout.text()));
    ana_connects_once(&relay, &mut agent);
}

/// Asks `relay` for a code as an agent would, and leaves the connection
/// to wait apart; the ticket.
async fn open_and_park(relay: &RelayProc) -> WaitingTicket {
    let mut link = link_to(relay, Role::Agent).await;
    link.writer.write_msg(&ClientMsg::Open).await.unwrap();
    let ticket = match link.answer().await.unwrap() {
        RelayMsg::Opened { ticket, .. } => ticket,
        other => panic!("no code: {other:?}"),
    };
    link.connection
        .close(close_code::PARKED.into(), b"waiting apart");
    link.endpoint.wait_idle().await;
    ticket
}

/// Sends `wait` from `socket` and reads the answer under `ticket`, if one
/// comes within a second.
async fn ask(socket: &UdpSocket, ticket: &WaitingTicket, wait: &[u8]) -> Option<Answer> {
    socket.send(wait).await.unwrap();
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    loop {
        let len = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .ok()?
            .unwrap();
        if let Some(answer) = ticket.read_answer(&buf[..len]) {
            return Some(answer);
        }
    }
}

/// Claims the code of `ticket` at `relay` as a console whose technician
/// is Ana; the console's link, which hears at once that it is paired.
async fn claim_as_ana(relay: &RelayProc, ticket: &WaitingTicket) -> RelayLink {
    let mut console = link_to(relay, Role::Console).await;
    console
        .writer
        .write_msg(&ClientMsg::Claim {
            nameplate: ticket.nameplate,
            technician: "Ana".into(),
            token: None,
        })
        .await
        .unwrap();
    console
}

/// Presents `ticket` to `relay` as the agent coming back for Ana's claim
/// made on `console`, and checks that both are paired.
async fn back_to_ana(relay: &RelayProc, ticket: WaitingTicket, mut console: RelayLink) {
    match present(relay, ticket).await {
        Ok(RelayMsg::Paired {
            technician: Some(technician),
            ..
        }) => assert_eq!(technician.name, "Ana"),
        other => panic!("the returning agent was not paired: {other:?}"),
    }
    assert!(matches!(
        tokio::time::timeout(STEP, console.answer()).await,
        Ok(Ok(RelayMsg::Paired {
            technician: None,
            ..
        }))
    ));
}

#[test]
fn only_a_fresh_wait_under_the_relays_ticket_is_answered_and_a_claim_pairs_on_return() {
    let relay = RelayProc::start(&[]);
    block_on(async {
        let ticket = open_and_park(&relay).await;
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(&relay.addr).await.unwrap();
        let held = |a: Option<Answer>| a.map(|a| a.held);

        assert_eq!(
            held(ask(&socket, &ticket, &ticket.wait(100, false)).await),
            Some(Held::Waiting)
        );
        // A replay, a wait under another relay's key, an altered one: no answer.
        assert_eq!(ask(&socket, &ticket, &ticket.wait(100, false)).await, None);
        let stranger = WaitingKey::from_bytes([9; 32]).issue(ticket.nameplate, ticket.expires_at);
        assert_eq!(
            ask(&socket, &stranger, &stranger.wait(101, false)).await,
            None
        );
        let mut altered = ticket.wait(102, false);
        altered[3] ^= 1;
        assert_eq!(ask(&socket, &ticket, &altered).await, None);
        // A code the relay does not hold, under its own key: come back.
        let secret =
            sprijin_relay::secret::Secret::load_or_create(&relay.dir.path().join("relay")).unwrap();
        let other = secret.tickets().issue(
            Nameplate::new(ticket.nameplate.get() ^ 1).unwrap(),
            ticket.expires_at,
        );
        assert_eq!(
            held(ask(&socket, &other, &other.wait(103, false)).await),
            Some(Held::NotHere)
        );

        // A console claims the code: the relay tells the waiting agent.
        let console = claim_as_ana(&relay, &ticket).await;
        let mut buf = [0u8; 512];
        let told = tokio::time::timeout(STEP, async {
            loop {
                let len = socket.recv(&mut buf).await.unwrap();
                if let Some(answer) = ticket.read_answer(&buf[..len]) {
                    return answer;
                }
            }
        })
        .await
        .expect("the relay did not tell the agent of its claim");
        // It echoes the last wait the relay took, 100: the others moved nothing.
        let Held::Claimed(pairing) = &told.held else {
            panic!("the agent was told {:?}, not its pairing", told.held);
        };
        assert_eq!(
            (pairing.technician.name.as_str(), told.counter),
            ("Ana", 100)
        );

        // Back with its ticket, the agent is paired.
        back_to_ana(&relay, ticket, console).await;
    });
}

#[test]
fn a_claim_made_before_the_agent_has_parked_reaches_it_apart() {
    let relay = RelayProc::start(&[]);
    block_on(async {
        // The agent has its code but its connection has not closed yet
        // when the technician claims it.
        let mut agent = link_to(&relay, Role::Agent).await;
        agent.writer.write_msg(&ClientMsg::Open).await.unwrap();
        let ticket = match agent.answer().await.unwrap() {
            RelayMsg::Opened { ticket, .. } => ticket,
            other => panic!("no code: {other:?}"),
        };
        let console = claim_as_ana(&relay, &ticket).await;
        agent
            .connection
            .close(close_code::PARKED.into(), b"waiting apart");
        agent.endpoint.wait_idle().await;

        // Its first wait hears of the claim, and it is paired on return.
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(&relay.addr).await.unwrap();
        let answer = ask(&socket, &ticket, &ticket.wait(1, false)).await;
        assert!(
            matches!(answer.map(|a| a.held), Some(Held::Claimed(_))),
            "the first wait did not hear of the claim"
        );
        back_to_ana(&relay, ticket, console).await;
    });
}

#[test]
fn a_waiting_code_survives_a_relay_restart() {
    let mut relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let pid = relay.proc.child.id();
    relay.proc.child.kill().unwrap(); // SIGKILL
    assert!(wait_until_gone(pid, STEP), "the relay did not die");
    // The agent notices at its next wait, which the restarted relay
    // answers "not here", and takes its nameplate back.
    let restarted = restart(&relay);
    back_with_its_code(&relay, &mut agent);
    drop(restarted);
}

#[test]
fn a_relay_shutting_down_tells_its_waiting_agents_at_once() {
    let metrics = free_tcp_addr();
    let mut relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    parked(metrics, 1);
    // Its first wait, sent as it parked, has told the relay where it is.
    std::thread::sleep(Duration::from_millis(300));
    relay.proc.interrupt();
    let asked = Instant::now();
    assert!(relay.proc.wait(STEP).is_some(), "the relay did not stop");
    agent
        .proc
        .stdout
        .wait_for("the relay is shutting down", STEP)
        .unwrap_or_else(|| panic!("agent was not told: {}", agent.proc.stdout.text()));
    // Well before the 30 s of silence that would otherwise tell it.
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let restarted = restart(&relay);
    back_with_its_code(&relay, &mut agent);
    drop(restarted);
}

/// Ana connects to `agent` through `relay` and quits; the agent ends, having
/// shown one code and recorded one session start, which is returned.
fn ana_connects_once(relay: &RelayProc, agent: &mut AgentProc) -> Vec<serde_json::Value> {
    let out = console(relay, &agent.code, &["--exec", "quit", "--name", "Ana"]);
    assert!(
        out.status.success(),
        "console failed: {}\n{}",
        out.stdout,
        out.stderr
    );
    agent_finishes(&mut agent.proc);
    let said = agent.proc.stdout.text();
    assert_eq!(said.matches("code: ").count(), 1, "one code only: {said}");
    let starts = audit_events(agent.data_dir.path(), "session_start");
    assert_eq!(starts.len(), 1, "{starts:?}");
    starts
}

/// Starts a relay again where `relay` ran, with its identity.
fn restart(relay: &RelayProc) -> Proc {
    let mut cmd = Command::new(bin("sprijin-relay"));
    cmd.args(["--listen", &relay.addr, "--data-dir"])
        .arg(relay.dir.path().join("relay"));
    let restarted = Proc::spawn(cmd);
    let line = restarted
        .stdout
        .wait_for("listening on ", STEP)
        .unwrap_or_else(|| panic!("relay did not restart: {}", restarted.stderr.text()));
    assert!(line.ends_with(&relay.fingerprint), "{line}");
    restarted
}

/// Checks that `agent`, which lost `relay`, reconnects to it and that its
/// one code still reaches it.
fn back_with_its_code(relay: &RelayProc, agent: &mut AgentProc) {
    agent
        .proc
        .stdout
        .wait_for("reconnected to relay", STEP)
        .unwrap_or_else(|| {
            panic!(
                "agent did not reconnect: {}\n{}",
                agent.proc.stdout.text(),
                agent.proc.stderr.text()
            )
        });
    let starts = ana_connects_once(relay, agent);
    assert_eq!(
        starts[0]["nameplate"],
        agent.code.split('-').next().unwrap()
    );
}

/// Presents `ticket` to `relay` and returns its refusal.
async fn reopen(
    relay: &RelayProc,
    ticket: sprijin_proto::waiting::WaitingTicket,
) -> (ErrorCode, String) {
    match present(relay, ticket).await {
        Err(LinkError::Refused(frame)) => (frame.code, frame.message),
        other => panic!("the relay took the ticket: {other:?}"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_forged_or_expired_waiting_ticket_is_refused() {
    let relay = RelayProc::start(&[]);
    let n = Nameplate::new(42).unwrap();
    let forged = WaitingKey::from_bytes([9; 32]).issue(n, unix_now() + 600);
    let (code, message) = block_on(reopen(&relay, forged));
    assert_eq!(code, ErrorCode::BadTicket);
    assert!(
        message.contains("cannot take code 42 back: this relay did not issue the waiting ticket"),
        "{message}"
    );

    // A ticket the relay did issue, but long expired.
    let secret =
        sprijin_relay::secret::Secret::load_or_create(&relay.dir.path().join("relay")).unwrap();
    let expired = secret.tickets().issue(n, unix_now() - 60);
    let (code, message) = block_on(reopen(&relay, expired));
    assert_eq!(code, ErrorCode::ExpiredNameplate);
    assert!(message.contains("the code expired"), "{message}");

    // And the same key's valid ticket is taken.
    let valid = secret.tickets().issue(n, unix_now() + 600);
    block_on(async {
        match present(&relay, valid).await {
            Ok(RelayMsg::Opened {
                nameplate,
                expires_in_secs,
                ..
            }) => {
                assert_eq!(nameplate, n);
                assert!((590..=600).contains(&expires_in_secs), "{expires_in_secs}");
            }
            other => panic!("the relay refused a valid ticket: {other:?}"),
        }
    });
}
