//! The direct path on one machine: agent and console on loopback move
//! their one connection off the relay once a probe is answered, say so
//! on both sides and in the audit log, and stay on the relay when either
//! side says `--direct never`. Across NATs: `direct_nat.rs`.

use sprijin_tests::{
    AgentProc, RelayProc, SLOW_COUNT, TestCatalog, assert_no_panic, audit_events, console, counted,
    events_named, json_lines, output_of,
};

/// Runs `slow-count n=N` from a console with `console_args`, against an
/// agent started with `agent_args`; the console's JSON events, its
/// printed output, and the agent's data folder.
fn session(
    n: usize,
    agent_args: &[&str],
    console_args: &[&str],
) -> (Vec<serde_json::Value>, String, AgentProc) {
    let cat = TestCatalog::signed(&[("slow-count", SLOW_COUNT)]);
    let relay = RelayProc::start(&[]);
    let mut args = vec!["--trusted-key", cat.public_arg()];
    args.extend_from_slice(agent_args);
    let agent = AgentProc::start(&relay, &["y", "y"], &args);
    let run = format!("run slow-count n={n}");
    let mut args = vec!["--catalog", cat.dir_arg(), "--exec", &run, "--json"];
    args.extend_from_slice(console_args);
    let out = console(&relay, &agent.code, &args);
    assert_no_panic(&out.stderr);
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let events = json_lines(&out.stdout);
    let received = output_of(&events);
    (events, received, agent)
}

#[test]
fn on_one_machine_the_session_goes_direct_and_both_sides_say_so() {
    let (events, received, agent) = session(100, &[], &[]);
    assert!(received == counted(100), "the output differs: {received}");
    let path = events_named(&events, "path");
    assert!(!path.is_empty(), "the console said nothing of the path");
    assert_eq!(path[0]["path"], "direct", "{path:?}");
    let peer = path[0]["peer"].as_str().expect("the agent's address");
    assert!(peer.parse::<std::net::SocketAddr>().is_ok(), "{peer}");

    let moves = audit_events(agent.data_dir.path(), "path_changed");
    assert!(!moves.is_empty(), "the audit log has no path change");
    assert_eq!(moves[0]["path"], "direct", "{moves:?}");
    let console_at: std::net::SocketAddr = moves[0]["peer"]
        .as_str()
        .expect("the console's address")
        .parse()
        .expect("an address");
    assert!(console_at.ip().is_loopback() || !console_at.ip().is_unspecified());
}

#[test]
fn the_person_saying_never_keeps_the_session_on_the_relay() {
    let (events, received, agent) = session(30, &["--direct", "never"], &[]);
    assert!(received == counted(30), "the output differs: {received}");
    let path = events_named(&events, "path");
    assert_eq!(path.len(), 1, "{path:?}");
    assert_eq!(path[0]["path"], "relayed");
    assert!(path[0]["peer"].is_null(), "{path:?}");
    assert!(
        path[0]["reason"]
            .as_str()
            .unwrap()
            .contains("does not allow"),
        "{path:?}"
    );
    assert!(audit_events(agent.data_dir.path(), "path_changed").is_empty());
}

#[test]
fn the_technician_saying_never_keeps_the_session_on_the_relay() {
    let (events, received, agent) = session(30, &[], &["--direct", "never"]);
    assert!(received == counted(30), "the output differs: {received}");
    assert!(events_named(&events, "path").is_empty(), "{events:?}");
    assert!(audit_events(agent.data_dir.path(), "path_changed").is_empty());
}
