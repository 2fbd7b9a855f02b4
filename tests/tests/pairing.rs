//! The walking skeleton end to end: a real relay pairs a real agent with a
//! real console over QUIC on loopback, and refuses what it must, clearly,
//! while it keeps serving others.

use sprijin_proto::framing::{FrameReader, FrameWriter};
use sprijin_proto::message::control::{
    ClientMsg, ErrorCode, Hello, PROTOCOL_VERSION, RelayMsg, Role,
};
use sprijin_proto::tls;
use sprijin_tests::*;

/// A full, successful session; returns the agent for more checks.
fn pair_once(relay: &RelayProc) -> (AgentProc, ConsoleOutput) {
    let mut agent = AgentProc::start(relay, &["y"], &[]);
    let out = console(relay, &agent.code, &["--exec", "quit", "--name", "Ana"]);
    let status = agent
        .proc
        .wait(STEP)
        .expect("agent exits after the session");
    assert!(
        status.success(),
        "agent failed: {}",
        agent.proc.stderr.text()
    );
    (agent, out)
}

#[test]
fn agent_and_console_pair_and_both_report_the_session() {
    let relay = RelayProc::start(&[]);
    let (agent, out) = pair_once(&relay);
    assert!(out.status.success(), "console failed: {}", out.stderr);
    assert!(out.stdout.contains("connected to "), "{}", out.stdout);
    assert!(
        out.stdout.contains("verification words: "),
        "{}",
        out.stdout
    );
    let agent_out = agent.proc.stdout.text();
    assert!(
        agent_out.contains("connected: technician Ana (name not verified: no credential)"),
        "{agent_out}"
    );
    // Both sides show the same verification words.
    let words = agent_out
        .lines()
        .find_map(|l| l.strip_prefix("verification words: "))
        .expect("agent shows verification words");
    assert!(
        out.stdout.contains(words),
        "console words differ: {}",
        out.stdout
    );
}

#[test]
fn json_mode_prints_one_object_per_line() {
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let out = console(&relay, &agent.code, &["--exec", "quit", "--json"]);
    assert!(out.status.success(), "{}", out.stderr);
    let first: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["event"], "session");
    assert!(first["verification"].as_str().unwrap().split('-').count() == 4);
    agent.proc.wait(STEP);
}

#[test]
fn wrong_nameplate_is_refused_and_the_relay_keeps_serving() {
    let relay = RelayProc::start(&[]);
    let agent = AgentProc::start(&relay, &["y"], &[]);
    let password = agent.code.split_once('-').unwrap().1;
    let out = console(&relay, &format!("987654-{password}"), &["--exec", "quit"]);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("no one is waiting with this code"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one-line error: {}",
        out.stderr
    );
    // The waiting agent is unaffected and can still be reached.
    let out = console(&relay, &agent.code, &["--exec", "quit"]);
    assert!(out.status.success(), "{}", out.stderr);
}

#[test]
fn a_used_code_is_refused() {
    let relay = RelayProc::start(&[]);
    let (agent, out) = pair_once(&relay);
    assert!(out.status.success());
    let again = console(&relay, &agent.code, &["--exec", "quit"]);
    assert!(!again.status.success());
    assert!(again.stderr.contains("already used"), "{}", again.stderr);
    let (_, out) = pair_once(&relay);
    assert!(out.status.success(), "relay still serves: {}", out.stderr);
}

#[test]
fn an_expired_code_is_refused_and_the_agent_is_told() {
    let relay = RelayProc::start(&["--nameplate-ttl", "1"]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let status = agent
        .proc
        .wait(STEP)
        .expect("agent gives up when its code expires");
    assert!(!status.success());
    assert!(
        agent.proc.stderr.text().contains("expired"),
        "{}",
        agent.proc.stderr.text()
    );
    let out = console(&relay, &agent.code, &["--exec", "quit"]);
    assert!(!out.status.success());
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    let (_, out) = pair_once(&relay);
    assert!(out.status.success(), "relay still serves: {}", out.stderr);
}

#[test]
fn a_console_pinned_to_another_fingerprint_refuses_and_shows_both() {
    let relay = RelayProc::start(&[]);
    let agent = AgentProc::start(&relay, &["y"], &[]);
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let mut cmd = std::process::Command::new(bin("sprijin-console"));
    cmd.args([
        "connect",
        &agent.code,
        "--relay",
        &relay.addr,
        "--relay-fingerprint",
        &wrong,
        "--exec",
        "quit",
    ]);
    let out = run_to_end(cmd);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains(&format!("expected {wrong}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("got {}", relay.fingerprint)),
        "{}",
        out.stderr
    );
}

#[test]
fn a_malformed_code_is_a_one_line_error() {
    let relay = RelayProc::start(&[]);
    for bad in ["velvet-harbor", "7-notaword-zzzz", "7"] {
        let out = console(&relay, bad, &["--exec", "quit"]);
        assert!(!out.status.success());
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{bad}: {}",
            out.stderr
        );
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    }
}

#[test]
fn the_relay_fingerprint_subcommand_matches_the_running_relay() {
    let relay = RelayProc::start(&[]);
    let out = std::process::Command::new(bin("sprijin-relay"))
        .args(["fingerprint", "--data-dir"])
        .arg(relay.dir.path().join("relay"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        relay.fingerprint
    );
}

/// A raw client speaking to the relay with our own hand-made frames.
async fn raw_stream(
    relay: &RelayProc,
) -> (
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
) {
    let pin = relay.fingerprint.parse().unwrap();
    let (config, _) = tls::client_config(Some(pin)).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(config);
    let conn = endpoint
        .connect(relay.addr.parse().unwrap(), "localhost")
        .unwrap()
        .await
        .unwrap();
    let (send, recv) = conn.open_bi().await.unwrap();
    (endpoint, conn, send, recv)
}

async fn relay_error(recv: quinn::RecvStream) -> (ErrorCode, String) {
    let mut reader = FrameReader::new(recv);
    match tokio::time::timeout(STEP, reader.expect_msg::<RelayMsg>()).await {
        Ok(Ok(RelayMsg::Error(e))) => (e.code, e.message),
        other => panic!("expected an error frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_peer_speaking_another_version_is_told_both_versions() {
    let relay = RelayProc::start(&[]);
    let (_e, _c, send, recv) = raw_stream(&relay).await;
    let mut writer = FrameWriter::new(send);
    writer
        .write_msg(&Hello {
            version: 99,
            role: Role::Console,
        })
        .await
        .unwrap();
    let (code, message) = relay_error(recv).await;
    assert_eq!(code, ErrorCode::VersionMismatch);
    assert!(
        message.contains(&format!("version {PROTOCOL_VERSION}")) && message.contains("version 99"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_frames_and_garbage_are_refused_and_the_relay_keeps_serving() {
    let mut relay = RelayProc::start(&[]);
    // A frame announcing 4 GiB: refused from its header, nothing allocated.
    let (_e, _c, mut send, recv) = raw_stream(&relay).await;
    send.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let (code, message) = relay_error(recv).await;
    assert_eq!(code, ErrorCode::ProtocolViolation);
    assert!(message.contains("over the limit"), "{message}");
    // Garbage in a well-sized frame.
    let (_e, _c, send, recv) = raw_stream(&relay).await;
    let mut writer = FrameWriter::new(send);
    writer.write_frame(&[0xff; 40]).await.unwrap();
    let (code, _) = relay_error(recv).await;
    assert_eq!(code, ErrorCode::ProtocolViolation);
    // A console asking to open, an agent asking to claim: wrong roles.
    let (_e, _c, send, recv) = raw_stream(&relay).await;
    let mut writer = FrameWriter::new(send);
    writer.write_msg(&Hello::new(Role::Console)).await.unwrap();
    writer.write_msg(&ClientMsg::Open).await.unwrap();
    let (code, _) = relay_error(recv).await;
    assert_eq!(code, ErrorCode::WrongRole);

    assert!(relay.proc.alive(), "relay died");
    let relay_ref = &relay;
    let out = tokio::task::block_in_place(|| pair_once(relay_ref).1);
    assert!(out.status.success(), "relay still serves: {}", out.stderr);
    assert_no_panic(&relay.proc.stderr.text());
}

#[test]
fn the_relay_stops_cleanly_on_ctrl_c() {
    let mut relay = RelayProc::start(&[]);
    let _waiting = AgentProc::start(&relay, &["y"], &[]);
    relay.proc.interrupt();
    let status = relay.proc.wait(STEP).expect("relay stops on Ctrl-C");
    assert!(status.success(), "{}", relay.proc.stderr.text());
    assert_no_panic(&relay.proc.stderr.text());
}

#[test]
fn every_program_has_help_and_version() {
    for name in ["sprijin-relay", "sprijin-agent", "sprijin-console"] {
        for flag in ["--help", "--version"] {
            let out = std::process::Command::new(bin(name))
                .arg(flag)
                .output()
                .unwrap();
            assert!(out.status.success(), "{name} {flag}");
            assert!(!out.stdout.is_empty(), "{name} {flag}");
        }
    }
}
