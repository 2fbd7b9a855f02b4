//! A session's requests do not wait for one another: a run that produces a
//! large output the technician is not reading holds back only its own
//! stream, and a diagnostics request is answered meanwhile.

use std::time::Duration;

use sprijin_console::catalog_tool;
use sprijin_proto::message::script::RunStatus;
use sprijin_proto::message::session::{AgentMsg, Request};
use sprijin_tests::*;

/// Writes far more than any window holds, as fast as it can.
const FLOOD: &str = r#"
id = "flood"
title = "Write a lot"
description = "Writes 400 MB of zeros."
risk = "low"
platforms = ["linux"]
timeout_secs = 300
program = "head"
args = ["-c", "400000000", "/dev/zero"]
"#;

#[test]
fn a_diagnostics_request_is_answered_while_a_run_floods_its_output() {
    let cat = TestCatalog::signed(&[("flood", FLOOD)]);
    let relay = RelayProc::start(&[]);
    let mut agent = AgentProc::start(
        &relay,
        &["y", "y"],
        &[
            "--trusted-key",
            cat.public_arg(),
            "--output-cap",
            "1000000000",
        ],
    );
    let signed = catalog_tool::load(&cat.dir).unwrap();
    block_on(async {
        let session = connect_in_process(&relay, &agent.code, "Ana").await;
        send_catalog(&session, signed).await;
        let (run_id, mut run) = session
            .request(Request::Run {
                script: "flood".parse().unwrap(),
                params: vec![],
            })
            .await
            .unwrap();
        // Read until the output flows, then stop reading it: its stream
        // fills up and the agent waits on it.
        let mut output = 0usize;
        while output < 4 {
            match next_reply(&mut run).await {
                AgentMsg::Output { .. } => output += 1,
                AgentMsg::RunStarted { .. } => {}
                other => panic!("unexpected answer to the run: {other:?}"),
            }
        }
        for _ in 0..3 {
            let (_, mut diag) = session.request(Request::Diagnostics).await.unwrap();
            let answer = tokio::time::timeout(Duration::from_secs(10), diag.recv())
                .await
                .expect("the diagnostics answer waited behind the run's output");
            assert!(
                matches!(answer, Some(AgentMsg::Diagnostics { .. })),
                "{answer:?}"
            );
        }
        // The run is still going, held back only by its own stream.
        let (_, mut cancel) = session
            .request(Request::Cancel { run: run_id })
            .await
            .unwrap();
        assert!(matches!(
            next_reply(&mut cancel).await,
            AgentMsg::Ack { .. }
        ));
        let end = loop {
            match next_reply(&mut run).await {
                AgentMsg::RunEnded { end, .. } => break end,
                AgentMsg::Output { .. } | AgentMsg::Truncated { .. } => {}
                other => panic!("unexpected answer to the run: {other:?}"),
            }
        };
        assert_eq!(end.status, RunStatus::Cancelled);
        session.close().await;
    });
    agent_finishes(&mut agent.proc);
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1, "{:?}", audit_kinds(agent.data_dir.path()));
    assert_eq!(ends[0]["status"], "cancelled");
    let kinds = audit_kinds(agent.data_dir.path());
    assert!(kinds.iter().any(|k| k == "session_end"), "{kinds:?}");
}
