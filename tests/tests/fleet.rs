//! Several relays with no shared state: each hands out nameplates from its
//! own block, a console that claims at the wrong relay is sent to the right
//! one, and an agent given several relays uses the first that answers. Three
//! real relay programs on loopback, each with its own identity, sharing one
//! peer list.

use std::process::Command;

use sprijin_proto::code::SessionCode;
use sprijin_tests::*;

/// A fleet of relay programs on fixed loopback ports, with one peer list
/// (ids, addresses and fingerprints) given to all.
struct Fleet {
    relays: Vec<Proc>,
    addrs: Vec<String>,
    fingerprints: Vec<String>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Fleet {
    fn start(n: usize) -> Fleet {
        let mut dirs = Vec::new();
        let mut fingerprints = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().unwrap();
            let out = run_to_end({
                let mut cmd = Command::new(bin("sprijin-relay"));
                cmd.args(["fingerprint", "--data-dir"]).arg(dir.path());
                cmd
            });
            assert!(out.status.success(), "{}", out.stderr);
            fingerprints.push(out.stdout.trim().to_string());
            dirs.push(dir);
        }
        // Free ports: bound by the system, then let go just before the
        // relays take them.
        let sockets: Vec<std::net::UdpSocket> = (0..n)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<String> = sockets
            .iter()
            .map(|s| s.local_addr().unwrap().to_string())
            .collect();
        drop(sockets);
        let peers: Vec<String> = (0..n)
            .map(|i| format!("{i}={}@{}", addrs[i], fingerprints[i]))
            .collect();
        let peers = peers.join(",");
        let relays = (0..n)
            .map(|i| {
                let mut cmd = Command::new(bin("sprijin-relay"));
                cmd.args(["--listen", &addrs[i], "--relay-id", &i.to_string()])
                    .args(["--peer", &peers, "--data-dir"])
                    .arg(dirs[i].path());
                let proc = Proc::spawn(cmd);
                let line = proc
                    .stdout
                    .wait_for("listening on ", STEP)
                    .unwrap_or_else(|| panic!("relay {i} did not start: {}", proc.stderr.text()));
                assert!(line.contains(&addrs[i]), "{line}");
                proc
            })
            .collect();
        Fleet {
            relays,
            addrs,
            fingerprints,
            _dirs: dirs,
        }
    }
}

fn nameplate(code: &str) -> u32 {
    code.parse::<SessionCode>().unwrap().nameplate().get()
}

#[test]
fn a_console_at_another_relay_is_sent_to_the_agents_relay() {
    let mut fleet = Fleet::start(3);
    let mut agent = AgentProc::start_at(&fleet.addrs[2], &fleet.fingerprints[2], &["y"], &[]);
    let n = nameplate(&agent.code);
    assert!(
        (2001..=2999).contains(&n),
        "relay 2 hands out 2001-2999 while it is quiet, not {n}"
    );
    // The console knows only relay 0, and pins relay 0's certificate.
    let out = console_at(
        &fleet.addrs[0],
        &fleet.fingerprints[0],
        &agent.code,
        &["--exec", "quit", "--name", "Ana"],
    );
    assert!(
        out.status.success(),
        "console failed: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "belongs to relay 2; claiming it at {}",
            fleet.addrs[2]
        )),
        "{}",
        out.stderr
    );
    agent_finishes(&mut agent.proc);
    let starts = audit_events(agent.data_dir.path(), "session_start");
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["technician"], "Ana");
    assert_no_panic(&out.stderr);
    for relay in &mut fleet.relays {
        assert!(relay.alive(), "a relay died: {}", relay.stderr.text());
    }
}

#[test]
fn a_code_of_a_relay_no_one_knows_is_refused_plainly() {
    let fleet = Fleet::start(3);
    let words = &sprijin_proto::words::WORDS;
    let code = format!("5042-{}-{}", words[0], words[1]);
    let out = console_at(
        &fleet.addrs[0],
        &fleet.fingerprints[0],
        &code,
        &["--exec", "quit"],
    );
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("code 5042 belongs to relay 5, which this relay (relay 0) does not know"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "one line: {}",
        out.stderr
    );
}

#[test]
fn an_agent_given_a_dead_relay_first_uses_the_next_one() {
    let relay = RelayProc::start(&[]);
    // A port where nothing answers: bound, and never read.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = silent.local_addr().unwrap().to_string();
    let relays = format!("{dead},{}", relay.addr);
    let mut agent = AgentProc::start_at(&relays, &relay.fingerprint, &["y"], &[]);
    let said = agent.proc.stdout.text();
    assert!(
        said.contains(&format!(
            "relay {dead} cannot be used (relay {dead} did not answer within 5 s"
        )),
        "{said}"
    );
    assert!(said.contains(&format!("trying {}", relay.addr)), "{said}");
    let out = console(&relay, &agent.code, &["--exec", "quit"]);
    assert!(out.status.success(), "console failed: {}", out.stderr);
    agent_finishes(&mut agent.proc);
    assert_eq!(
        audit_events(agent.data_dir.path(), "session_start").len(),
        1
    );
}
