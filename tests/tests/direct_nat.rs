//! The direct path across NATs, in network namespaces built by
//! [`sprijin_tests::netlab`]: the relay on the "internet", the console
//! behind NAT A, the agent behind NAT B, all the real programs.
//!
//! - two endpoint-independent ("easy") NATs end up direct;
//! - two endpoint-dependent ("hard") NATs stay relayed and work;
//! - one office behind one NAT goes direct over the LAN;
//! - the direct path cut mid-run (an nft drop rule) falls back to the
//!   relay with the run's output intact, and the audit log records both
//!   moves;
//! - `--direct never` never leaves the relay;
//! - once direct, the session outlives a relay that stops.
//!
//! They need root, iproute2 and nftables, which `.ci/run` installs.

use std::process::Command;
use std::time::{Duration, Instant};

use sprijin_tests::netlab::{Host, Lab, Nat};
use sprijin_tests::{
    Proc, SLOW_COUNT, STEP, TestCatalog, assert_no_panic, audit_events, bin, counted, events_named,
    json_lines, output_of,
};

const NEEDS: &str = "needs root, iproute2 and nftables (nft), which .ci/run installs";

/// A relay in the lab's internet namespace.
struct LabRelay {
    proc: Proc,
    addr: String,
    fingerprint: String,
    _dir: tempfile::TempDir,
}

impl LabRelay {
    fn start(lab: &Lab) -> LabRelay {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = lab.command(Host::Relay, bin("sprijin-relay"));
        cmd.arg("--listen")
            .arg(format!("{}:0", Lab::RELAY_IP))
            .arg("--data-dir")
            .arg(dir.path().join("relay"));
        let proc = Proc::spawn(cmd);
        let line = proc
            .stdout
            .wait_for("listening on ", STEP)
            .unwrap_or_else(|| panic!("relay did not start: {}", proc.stderr.text()));
        let words: Vec<&str> = line.split_whitespace().collect();
        LabRelay {
            addr: words[2].to_string(),
            fingerprint: words[4].to_string(),
            proc,
            _dir: dir,
        }
    }
}

/// An agent sharing host B through `relay`, trusting `cat`.
struct LabAgent {
    proc: Proc,
    code: String,
    data_dir: tempfile::TempDir,
}

impl LabAgent {
    fn start(lab: &Lab, relay: &LabRelay, cat: &TestCatalog, extra: &[&str]) -> LabAgent {
        let data_dir = tempfile::tempdir().unwrap();
        let mut cmd = lab.command(Host::B, bin("sprijin-agent"));
        cmd.args(["share", "--terminal", "--relay", &relay.addr])
            .args(["--relay-fingerprint", &relay.fingerprint])
            .args(["--trusted-key", cat.public_arg()])
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(extra);
        let mut proc = Proc::spawn(cmd);
        proc.answer(&["y", "y"]);
        let code = proc.code();
        LabAgent {
            proc,
            code,
            data_dir,
        }
    }

    fn moves(&self) -> Vec<serde_json::Value> {
        audit_events(self.data_dir.path(), "path_changed")
    }
}

/// The console on host A, running `slow-count n=N` with `--json`, not
/// waited for; its session logs go to `cat`'s folder.
fn console(
    lab: &Lab,
    relay: &LabRelay,
    agent: &LabAgent,
    cat: &TestCatalog,
    n: usize,
    extra: &[&str],
) -> Proc {
    let data_dir = cat.root.path().join("console");
    let mut cmd = lab.command(Host::A, bin("sprijin-console"));
    cmd.args(["connect", &agent.code, "--relay", &relay.addr])
        .args(["--relay-fingerprint", &relay.fingerprint])
        .args(["--catalog", cat.dir_arg(), "--json"])
        .args(["--exec", &format!("run slow-count n={n}")])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra);
    let mut proc = Proc::spawn(cmd);
    proc.close_stdin();
    proc
}

/// Waits for the console to finish well; its events.
fn finished(console: &mut Proc) -> Vec<serde_json::Value> {
    let status = console
        .wait(STEP * 2)
        .unwrap_or_else(|| panic!("the console did not finish: {}", console.stderr.text()));
    assert_no_panic(&console.stderr.text());
    assert!(
        status.success(),
        "{}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    json_lines(&console.stdout.text())
}

fn ip_of(addr: &serde_json::Value) -> String {
    let addr: std::net::SocketAddr = addr
        .as_str()
        .unwrap_or_else(|| panic!("no address: {addr}"))
        .parse()
        .expect("an address");
    addr.ip().to_string()
}

fn lab(a: Nat, b: Nat) -> Lab {
    assert!(Lab::available(), "{NEEDS}");
    Lab::new(a, b)
}

#[test]
#[ignore = "needs root, iproute2 and nftables (nft), which .ci/run installs"]
fn two_easy_nats_go_direct_and_each_side_learns_the_others_public_address() {
    let lab = lab(Nat::Easy, Nat::Easy);
    let cat = TestCatalog::signed(&[("slow-count", SLOW_COUNT)]);
    let relay = LabRelay::start(&lab);
    let agent = LabAgent::start(&lab, &relay, &cat, &[]);
    let mut console = console(&lab, &relay, &agent, &cat, 100, &[]);
    let events = finished(&mut console);
    assert!(output_of(&events) == counted(100), "the output differs");

    let path = events_named(&events, "path");
    assert_eq!(path.len(), 1, "{path:?}");
    assert_eq!(path[0]["path"], "direct");
    assert_eq!(ip_of(&path[0]["peer"]), lab.public_ip(Host::B).to_string());
    let moves = agent.moves();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0]["path"], "direct");
    assert_eq!(ip_of(&moves[0]["peer"]), lab.public_ip(Host::A).to_string());
    drop(relay);
}

#[test]
#[ignore = "needs root, iproute2 and nftables (nft), which .ci/run installs"]
fn two_hard_nats_stay_on_the_relay_and_the_session_works() {
    let lab = lab(Nat::Hard, Nat::Hard);
    let cat = TestCatalog::signed(&[("slow-count", SLOW_COUNT)]);
    let relay = LabRelay::start(&lab);
    let agent = LabAgent::start(&lab, &relay, &cat, &[]);
    // Longer than an attempt to punch (5 s).
    let mut console = console(&lab, &relay, &agent, &cat, 300, &[]);
    let events = finished(&mut console);
    assert!(output_of(&events) == counted(300), "the output differs");
    assert!(events_named(&events, "path").is_empty(), "{events:?}");
    assert!(agent.moves().is_empty(), "{:?}", agent.moves());
    drop(relay);
}

#[test]
#[ignore = "needs root, iproute2 and nftables (nft), which .ci/run installs"]
fn one_office_behind_one_nat_goes_direct_over_the_lan() {
    assert!(Lab::available(), "{NEEDS}");
    let lab = Lab::same_lan();
    let cat = TestCatalog::signed(&[("slow-count", SLOW_COUNT)]);
    let relay = LabRelay::start(&lab);
    let agent = LabAgent::start(&lab, &relay, &cat, &[]);
    let mut console = console(&lab, &relay, &agent, &cat, 100, &[]);
    let events = finished(&mut console);
    assert!(output_of(&events) == counted(100), "the output differs");
    let path = events_named(&events, "path");
    assert_eq!(path.len(), 1, "{path:?}");
    assert_eq!(ip_of(&path[0]["peer"]), lab.host_ip(Host::B).to_string());
    let moves = agent.moves();
    assert_eq!(ip_of(&moves[0]["peer"]), lab.host_ip(Host::A).to_string());
    drop(relay);
}

#[test]
#[ignore = "needs root, iproute2 and nftables (nft), which .ci/run installs"]
fn a_direct_path_cut_mid_run_falls_back_to_the_relay_with_the_output_intact() {
    let lab = lab(Nat::Easy, Nat::Easy);
    let cat = TestCatalog::signed(&[("slow-count", SLOW_COUNT)]);
    let relay = LabRelay::start(&lab);
    let agent = LabAgent::start(&lab, &relay, &cat, &[]);
    // About 10 s of output, so the cut and the fallback fall inside it.
    let mut console = console(&lab, &relay, &agent, &cat, 500, &[]);
    let deadline = Instant::now() + STEP;
    while agent.moves().is_empty() {
        assert!(Instant::now() < deadline, "the session never went direct");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    lab.cut_direct();
    let cut = Instant::now();
    while agent.moves().len() < 2 {
        assert!(
            cut.elapsed() < STEP,
            "the session did not go back to the relay: {:?}",
            agent.moves()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let fallback_gap = cut.elapsed();
    let events = finished(&mut console);
    assert!(
        output_of(&events) == counted(500),
        "the output was not intact across the fallback"
    );
    let moves = agent.moves();
    let kinds: Vec<&str> = moves.iter().map(|m| m["path"].as_str().unwrap()).collect();
    assert_eq!(kinds[..2], ["direct", "relayed"], "{moves:?}");
    let path = events_named(&events, "path");
    let kinds: Vec<&str> = path.iter().map(|m| m["path"].as_str().unwrap()).collect();
    assert_eq!(kinds[..2], ["direct", "relayed"], "{path:?}");
    assert!(
        path[1]["reason"]
            .as_str()
            .unwrap()
            .contains("stopped answering"),
        "{path:?}"
    );
    // Within a few seconds: the checks every 0.5 s, 1.5 s without an answer.
    assert!(fallback_gap < Duration::from_secs(5), "{fallback_gap:?}");
    eprintln!("fallback_gap_ms {}", fallback_gap.as_millis());
    drop(relay);
}

#[test]
#[ignore = "needs root, iproute2 and nftables (nft), which .ci/run installs"]
fn direct_never_keeps_the_session_on_the_relay_even_where_it_could_go_direct() {
    let lab = lab(Nat::Easy, Nat::Easy);
    let cat = TestCatalog::signed(&[("slow-count", SLOW_COUNT)]);
    let relay = LabRelay::start(&lab);
    let agent = LabAgent::start(&lab, &relay, &cat, &["--direct", "never"]);
    let mut console = console(&lab, &relay, &agent, &cat, 300, &[]);
    let events = finished(&mut console);
    assert!(output_of(&events) == counted(300), "the output differs");
    let path = events_named(&events, "path");
    assert!(
        path.iter()
            .all(|p| p["path"] == "relayed" && p["peer"].is_null()),
        "{path:?}"
    );
    assert!(agent.moves().is_empty(), "{:?}", agent.moves());
    drop(relay);
}

#[test]
#[ignore = "needs root, iproute2 and nftables (nft), which .ci/run installs"]
fn once_direct_the_session_outlives_a_relay_that_stops() {
    let lab = lab(Nat::Easy, Nat::Easy);
    let cat = TestCatalog::signed(&[("slow-count", SLOW_COUNT)]);
    let relay = LabRelay::start(&lab);
    let mut agent = LabAgent::start(&lab, &relay, &cat, &[]);
    let mut console = console(&lab, &relay, &agent, &cat, 250, &[]);
    let deadline = Instant::now() + STEP;
    while agent.moves().is_empty() {
        assert!(Instant::now() < deadline, "the session never went direct");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stopped = Command::new("kill")
        .args(["-STOP", &relay.proc.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let events = finished(&mut console);
    assert!(output_of(&events) == counted(250), "the output differs");
    assert_eq!(agent.moves().len(), 1, "{:?}", agent.moves());
    let status = agent
        .proc
        .wait(STEP)
        .expect("the agent ends with the session");
    assert!(status.success(), "{}", agent.proc.stdout.text());
    let _ = Command::new("kill")
        .args(["-CONT", &relay.proc.child.id().to_string()])
        .status();
}
