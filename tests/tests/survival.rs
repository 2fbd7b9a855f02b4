//! Sessions outlive their relay and a network change: the relay killed and
//! started again on the same address and data folder, paused for 20 s, or
//! the agent's NAT giving it a new port, in the middle of a run
//! whose output is large and paced, and the run's output arrives complete,
//! nothing lost and nothing twice, and the agent's audit log records the
//! run's end and the session's goodbye. After a restart, the output resumes
//! at the console, which only receives, within two seconds of the relay's
//! return.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sprijin_tests::*;

/// Numbered lines, a few at a time, for about fifteen seconds, after
/// writing its pid.
const NUMBERED: &str = r#"
id = "numbered"
title = "Numbered lines"
description = "Prints numbered lines slowly."
risk = "low"
platforms = ["linux"]
timeout_secs = 300
program = "sh"
args = ["-c", 'echo $$ > "$1/pid"; i=1; while [ $i -le 3000 ]; do printf "line %05d %0200d\n" $i 0; if [ $((i % 20)) -eq 0 ]; then sleep 0.1; fi; i=$((i+1)); done', "sh", "{dir}"]

[params.dir]
pattern = '^/[A-Za-z0-9._/-]{1,200}$'
"#;

const LINES: usize = 3000;

/// How long the whole run may take on a loaded machine, outage included.
const RUN_WITHIN: Duration = Duration::from_secs(120);

/// How soon after a restarted relay listens the run's output must flow
/// again: both sides present at once, the one that only receives included.
const RESUME_WITHIN: Duration = Duration::from_secs(2);

fn expected_output() -> String {
    (1..=LINES)
        .map(|i| format!("line {i:05} {:0200}\n", 0))
        .collect()
}

/// Starts a relay on `addr` with the data folder `data_dir`, waiting until
/// it listens (the old one's socket may take a moment to be free).
fn relay_at(addr: &str, data_dir: &Path) -> Proc {
    let mut cmd = Command::new(bin("sprijin-relay"));
    cmd.args(["--listen", addr, "--data-dir"]).arg(data_dir);
    let proc = Proc::spawn(cmd);
    assert!(
        proc.stdout.wait_for("listening on ", STEP).is_some(),
        "the relay did not start again: {}",
        proc.stderr.text()
    );
    proc
}

/// What a fault does to the relay in the middle of the run.
enum Fault {
    /// SIGKILL, then a new relay on the same address and data folder.
    Restart,
    /// SIGSTOP for this long, then SIGCONT.
    Pause(Duration),
    /// The agent's NAT maps it to a new port, as after a network change.
    NewPort,
}

/// A NAT in front of the relay for the agent: every datagram from a client
/// leaves from an outside socket of that client's own, and the relay's
/// answers come back through it. [`Nat::remap`] gives every client a new
/// outside port, as a NAT does when its mapping changes.
#[derive(Clone)]
struct Nat {
    relay: SocketAddr,
    inside: Arc<UdpSocket>,
    outside: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
    /// Bumped by each remapping; a mapping's return path stops when it is
    /// no longer current.
    generation: Arc<AtomicU64>,
    remapped: Arc<AtomicU64>,
}

impl Nat {
    fn start(relay: SocketAddr) -> Nat {
        let nat = Nat {
            relay,
            inside: Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap()),
            outside: Arc::default(),
            generation: Arc::default(),
            remapped: Arc::default(),
        };
        let run = nat.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok((n, from)) = run.inside.recv_from(&mut buf) {
                let socket = run.outside_for(from);
                let _ = socket.send_to(&buf[..n], run.relay);
            }
        });
        nat
    }

    fn addr(&self) -> SocketAddr {
        self.inside.local_addr().unwrap()
    }

    /// The outside socket of the client at `from`, mapped now if it has none.
    fn outside_for(&self, from: SocketAddr) -> Arc<UdpSocket> {
        let mut map = self.outside.lock().unwrap();
        if let Some(socket) = map.get(&from) {
            return socket.clone();
        }
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (back, inside, generation) =
            (socket.clone(), self.inside.clone(), self.generation.clone());
        let mine = generation.load(Ordering::SeqCst);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while generation.load(Ordering::SeqCst) == mine {
                if let Ok(n) = back.recv(&mut buf) {
                    let _ = inside.send_to(&buf[..n], from);
                }
            }
        });
        map.insert(from, socket.clone());
        socket
    }

    /// Forgets every mapping: the next datagram of each client leaves from
    /// a new port, and the relay's answers to the old ports go nowhere.
    fn remap(&self) {
        let mut map = self.outside.lock().unwrap();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.remapped.fetch_add(map.len() as u64, Ordering::SeqCst);
        map.clear();
    }
}

fn run_survives(fault: Fault) {
    let cat = TestCatalog::signed(&[("numbered", NUMBERED)]);
    let pid_dir = cat.root.path().join("pid");
    std::fs::create_dir_all(&pid_dir).unwrap();
    let mut relay = RelayProc::start(&[]);
    // With a new port to come, the agent reaches the relay through a NAT.
    let nat = matches!(fault, Fault::NewPort).then(|| Nat::start(relay.addr.parse().unwrap()));
    let agent_relay = nat
        .as_ref()
        .map_or(relay.addr.clone(), |n| n.addr().to_string());
    let mut agent = AgentProc::start_at(
        &agent_relay,
        &relay.fingerprint,
        &["y", "y"],
        &["--trusted-key", cat.public_arg()],
    );
    let run = format!("run numbered dir={}", pid_dir.display());
    let mut console = Proc::spawn(console_command(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &["--catalog", cat.dir_arg(), "--exec", &run, "--json"],
    ));
    assert!(
        console.stdout.wait_for("line 00200", STEP).is_some(),
        "the run's output did not start: {}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    let script = wait_for_pid_file(&pid_dir.join("pid"), STEP).expect("the script wrote its pid");

    let relay_pid = relay.proc.child.id().to_string();
    let _new_relay = match fault {
        Fault::Restart => {
            relay.proc.child.kill().unwrap();
            let _ = relay.proc.child.wait();
            let new = relay_at(&relay.addr, &relay.dir.path().join("relay"));
            let back = std::time::Instant::now();
            // What the console printed before the relay came back.
            let before = console.stdout.len();
            while console.stdout.len() == before {
                assert!(
                    back.elapsed() < RUN_WITHIN,
                    "the output never resumed: {}",
                    console.stderr.text()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let resumed = back.elapsed();
            eprintln!("the output resumed {resumed:?} after the relay came back");
            assert!(
                resumed <= RESUME_WITHIN,
                "the output resumed {resumed:?} after the relay came back, not within {RESUME_WITHIN:?}"
            );
            Some(new)
        }
        Fault::Pause(how_long) => {
            let stopped = Command::new("kill")
                .args(["-STOP", &relay_pid])
                .status()
                .unwrap();
            assert!(stopped.success());
            // The outage itself: how long the relay is gone.
            std::thread::sleep(how_long);
            let resumed = Command::new("kill")
                .args(["-CONT", &relay_pid])
                .status()
                .unwrap();
            assert!(resumed.success());
            None
        }
        Fault::NewPort => {
            let nat = nat.as_ref().expect("the agent is behind the NAT");
            nat.remap();
            assert!(
                nat.remapped.load(Ordering::SeqCst) > 0,
                "the agent had no mapping to change"
            );
            None
        }
    };

    let status = wait_end(&mut console, RUN_WITHIN, "the console");
    assert!(
        status.success(),
        "{}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    let events = json_lines(&console.stdout.text());
    let mut received = String::new();
    for event in events_named(&events, "output") {
        received.push_str(event["data"].as_str().expect("output data"));
    }
    let expected = expected_output();
    assert_eq!(
        received.len(),
        expected.len(),
        "the output is {} bytes, not {}",
        received.len(),
        expected.len()
    );
    assert!(
        received == expected,
        "the output lost, repeated or reordered lines"
    );
    let ended = events_named(&events, "run_end");
    assert_eq!(ended.len(), 1, "{}", console.stdout.text());

    agent_finishes(&mut agent.proc);
    let kinds = audit_kinds(agent.data_dir.path());
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1, "{kinds:?}");
    let status = ends[0]["status"].as_str().unwrap_or_default();
    assert!(
        !status.contains("session ended"),
        "run end status: {status}"
    );
    let session_end = audit_events(agent.data_dir.path(), "session_end");
    assert_eq!(session_end.len(), 1, "{kinds:?}");
    let reason = session_end[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the technician ended the session"),
        "session end reason: {reason}"
    );
    assert!(
        !agent.proc.stdout.text().contains("the connection was lost"),
        "{}",
        agent.proc.stdout.text()
    );
    // Nothing of the run is left, and the relay serving now is still up.
    assert!(wait_until_gone(script, Duration::from_secs(10)));
    if let Some(mut new_relay) = _new_relay {
        assert!(new_relay.alive(), "the restarted relay is gone");
    } else {
        assert!(relay.proc.alive(), "the paused relay is gone");
    }
}

#[test]
fn a_run_outlives_a_relay_restart_and_its_output_arrives_complete() {
    run_survives(Fault::Restart);
}

#[test]
fn a_run_outlives_a_relay_paused_for_twenty_seconds_and_its_output_arrives_complete() {
    run_survives(Fault::Pause(Duration::from_secs(20)));
}

#[test]
fn a_run_outlives_the_agents_network_changing_its_address_and_its_output_arrives_complete() {
    run_survives(Fault::NewPort);
}

#[test]
fn a_waiting_agent_whose_network_changed_its_address_is_still_reached_by_its_claim() {
    let metrics = sprijin_tests::metrics::free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let nat = Nat::start(relay.addr.parse().unwrap());
    let mut agent = AgentProc::start_at(&nat.addr().to_string(), &relay.fingerprint, &["y"], &[]);
    // Waiting apart, with no connection at the relay.
    sprijin_tests::metrics::parked(metrics, 1);
    nat.remap();
    assert!(
        nat.remapped.load(Ordering::SeqCst) > 0,
        "the agent had no mapping to change"
    );
    // The old mappings' return paths close within 100 ms.
    std::thread::sleep(Duration::from_millis(300));
    // The claim is told to the old address first; the agent's next wait,
    // from its new one, hears it.
    let started = std::time::Instant::now();
    let out = console_at(
        &relay.addr,
        &relay.fingerprint,
        &agent.code,
        &["--exec", "quit", "--name", "Ana"],
    );
    assert!(
        out.status.success(),
        "console failed after {:?}: {}\n{}",
        started.elapsed(),
        out.stdout,
        out.stderr
    );
    agent_finishes(&mut agent.proc);
    assert_eq!(
        audit_events(agent.data_dir.path(), "session_start").len(),
        1
    );
}
