//! A waiting code survives a relay restart: the agent reconnects by itself
//! and presents its waiting ticket, and the restarted relay makes the same
//! nameplate wait again. A ticket the relay did not issue, or one that has
//! expired, is refused with a clear error.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sprijin_proto::client::{LinkError, RelayLink};
use sprijin_proto::code::Nameplate;
use sprijin_proto::message::control::{ClientMsg, ErrorCode, RelayMsg, Role};
use sprijin_proto::waiting::WaitingKey;
use sprijin_tests::*;

#[test]
fn a_waiting_code_survives_a_relay_restart() {
    let mut relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let pid = relay.proc.child.id();
    relay.proc.child.kill().unwrap(); // SIGKILL
    assert!(wait_until_gone(pid, STEP), "the relay did not die");

    let mut cmd = Command::new(bin("sprijin-relay"));
    cmd.args(["--listen", &relay.addr, "--data-dir"])
        .arg(relay.dir.path().join("relay"));
    let restarted = Proc::spawn(cmd);
    let line = restarted
        .stdout
        .wait_for("listening on ", STEP)
        .unwrap_or_else(|| panic!("relay did not restart: {}", restarted.stderr.text()));
    assert!(line.ends_with(&relay.fingerprint), "{line}");

    // The agent notices at its next keep-alive, which the restarted relay
    // answers with a stateless reset, and takes its nameplate back.
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
    let out = console_at(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &["--exec", "quit", "--name", "Ana"],
    );
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
    assert_eq!(
        starts[0]["nameplate"],
        agent.code.split('-').next().unwrap()
    );
    drop(restarted);
}

/// Presents `ticket` to `relay` and returns its refusal.
async fn reopen(
    relay: &RelayProc,
    ticket: sprijin_proto::waiting::WaitingTicket,
) -> (ErrorCode, String) {
    let mut link = RelayLink::connect(
        &relay.addr,
        Some(relay.fingerprint.parse().unwrap()),
        Role::Agent,
    )
    .await
    .unwrap();
    link.writer
        .write_msg(&ClientMsg::Reopen { ticket })
        .await
        .unwrap();
    match tokio::time::timeout(STEP, link.answer()).await.unwrap() {
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
        let mut link = RelayLink::connect(
            &relay.addr,
            Some(relay.fingerprint.parse().unwrap()),
            Role::Agent,
        )
        .await
        .unwrap();
        link.writer
            .write_msg(&ClientMsg::Reopen { ticket: valid })
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(30), link.answer()).await {
            Ok(Ok(RelayMsg::Opened {
                nameplate,
                expires_in_secs,
                ..
            })) => {
                assert_eq!(nameplate, n);
                assert!((590..=600).contains(&expires_in_secs), "{expires_in_secs}");
            }
            other => panic!("the relay refused a valid ticket: {other:?}"),
        }
    });
}
