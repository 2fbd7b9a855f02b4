//! Operations end to end, with the real programs: the relay's config file
//! and its precedence, JSON logs, the health and metrics endpoint and what
//! it counts, shell completions and man pages.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use sprijin_proto::code::SessionCode;
use sprijin_proto::words::WORDS;
use sprijin_tests::metrics::{free_tcp_addr, get_when_up, value, wait_metric};
use sprijin_tests::*;

const PROGRAMS: [&str; 3] = ["sprijin-relay", "sprijin-agent", "sprijin-console"];

fn relay_with(args: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("sprijin-relay"));
    cmd.args(args);
    Proc::spawn(cmd)
}

/// A well-formed code no agent is waiting with.
fn unused_code() -> String {
    format!("999-{}-{}", WORDS[0], WORDS[1])
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn run(program: &str, args: &[&str]) -> ConsoleOutput {
    let mut cmd = Command::new(bin(program));
    cmd.args(args);
    run_to_end(cmd)
}

#[test]
fn relay_config_file_values_take_effect_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("identity");
    let from_file = free_tcp_addr();
    let config = dir.path().join("relay.toml");
    write(
        &config,
        &format!(
            "# the relay for the help desk\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nmetrics = \"{from_file}\"\n",
            data.display()
        ),
    );
    let expected = run(
        "sprijin-relay",
        &["fingerprint", "--data-dir", data.to_str().unwrap()],
    );
    assert!(expected.status.success(), "{}", expected.stderr);
    let fingerprint = expected.stdout.trim().to_string();

    // The file alone: its data dir holds the identity, its metrics address serves.
    let relay = relay_with(&["--config", config.to_str().unwrap()]);
    let line = relay
        .stdout
        .wait_for("listening on 127.0.0.1:", STEP)
        .unwrap_or_else(|| panic!("relay did not start: {}", relay.stderr.text()));
    assert!(line.ends_with(&fingerprint), "{line} vs {fingerprint}");
    assert!(get_when_up(from_file, "/healthz").starts_with("HTTP/1.1 200"));
    drop(relay);

    // A flag overrides the file's key; the other keys still count.
    let from_flag = free_tcp_addr();
    let relay = relay_with(&[
        "--config",
        config.to_str().unwrap(),
        "--metrics",
        &from_flag.to_string(),
    ]);
    let line = relay
        .stdout
        .wait_for("listening on 127.0.0.1:", STEP)
        .unwrap_or_else(|| panic!("relay did not start: {}", relay.stderr.text()));
    assert!(line.ends_with(&fingerprint), "{line}");
    assert!(get_when_up(from_flag, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(
        TcpStream::connect(from_file).is_err(),
        "the file's metrics address should not be served when a flag overrides it"
    );
}

#[test]
fn an_unknown_relay_config_key_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("relay.toml");
    write(
        &config,
        "listen = \"127.0.0.1:0\"\n# limits\nclaims_per_minit = 3\n",
    );
    let out = run("sprijin-relay", &["--config", config.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let err = out.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("claims_per_minit"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains(config.to_str().unwrap()), "{err}");

    // The same rule holds for the agent's and the console's files.
    write(&config, "relay = \"127.0.0.1:1\"\n\nrelai = \"x\"\n");
    let agent = run(
        "sprijin-agent",
        &["share", "--config", config.to_str().unwrap()],
    );
    assert!(!agent.status.success());
    assert!(agent.stderr.contains("relai"), "{}", agent.stderr);
    assert!(agent.stderr.contains("line 3"), "{}", agent.stderr);
    let console = run(
        "sprijin-console",
        &[
            "connect",
            &unused_code(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert!(!console.status.success());
    assert!(console.stderr.contains("relai"), "{}", console.stderr);
    assert!(console.stderr.contains("line 3"), "{}", console.stderr);
}

#[test]
fn a_session_rate_too_small_for_a_handshake_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "sprijin-relay",
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().join("relay").to_str().unwrap(),
            "--session-rate",
            "1000",
        ],
    );
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let err = out.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("--session-rate of 1000"), "{err}");
    assert!(err.contains("at least 16384"), "{err}");
    assert_no_panic(err);
}

#[test]
fn console_config_file_names_the_relay() {
    let relay = RelayProc::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("console.toml");
    write(
        &config,
        &format!(
            "relay = \"{}\"\nrelay_fingerprint = \"{}\"\nname = \"Ana from the file\"\n",
            relay.addr, relay.fingerprint
        ),
    );
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let mut cmd = Command::new(bin("sprijin-console"));
    cmd.args(["connect", &agent.code, "--config"])
        .arg(&config)
        .args(["--data-dir"])
        .arg(dir.path().join("console"))
        .args(["--exec", "quit"]);
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(
        agent
            .proc
            .stdout
            .wait_for("Ana from the file", STEP)
            .is_some(),
        "{}",
        agent.proc.stdout.text()
    );
    agent.proc.wait(STEP);
}

#[test]
fn log_format_json_writes_one_json_object_per_line_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("sprijin-relay"));
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        "--data-dir",
    ])
    .arg(dir.path())
    .env("RUST_LOG", "info");
    let mut relay = Proc::spawn(cmd);
    relay
        .stdout
        .wait_for("listening on ", STEP)
        .unwrap_or_else(|| panic!("relay did not start: {}", relay.stderr.text()));
    relay.interrupt();
    assert!(relay.wait(STEP).is_some(), "the relay did not stop");
    let stderr = relay.stderr.text();
    let records: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let shutdown = records
        .iter()
        .find(|r| r["message"] == "relay shutting down")
        .unwrap_or_else(|| panic!("no shutdown record in: {stderr}"));
    assert_eq!(shutdown["level"], "INFO");
    assert!(shutdown["timestamp"].is_string(), "{shutdown}");

    // The default stays text.
    let mut cmd = Command::new(bin("sprijin-relay"));
    cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info");
    let mut relay = Proc::spawn(cmd);
    relay.stdout.wait_for("listening on ", STEP).unwrap();
    relay.interrupt();
    relay.wait(STEP);
    let text = relay.stderr.text();
    assert!(text.contains("relay shutting down"), "{text}");
    assert!(!text.trim_start().starts_with('{'), "{text}");
}

#[test]
fn healthz_answers_ok_and_other_paths_are_not_found() {
    let metrics = free_tcp_addr();
    let _relay = RelayProc::start(&["--metrics", &metrics.to_string()]);
    let health = get_when_up(metrics, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("\r\n\r\nok\n"), "{health}");
    let text = get_when_up(metrics, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("sprijin_relay_sessions_ended_total"),
        "{text}"
    );
    let other = get_when_up(metrics, "/secret");
    assert!(other.starts_with("HTTP/1.1 404"), "{other}");
}

#[test]
fn sessions_are_counted_by_how_they_ended() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&["--metrics", &metrics.to_string()]);

    // Completed: the technician quits.
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let out = console(&relay, &agent.code, &["--exec", "quit"]);
    assert!(out.status.success(), "{}", out.stderr);
    agent.proc.wait(STEP);
    let text = wait_metric(
        metrics,
        "sprijin_relay_sessions_ended_total{outcome=\"Completed\"}",
        1,
    );
    assert!(
        value(&text, "sprijin_relay_setup_seconds_count") >= 1,
        "{text}"
    );
    assert!(
        value(&text, "sprijin_relay_bytes_forwarded_total") > 0,
        "{text}"
    );

    // Wrong code: the right nameplate with other words.
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let code: SessionCode = agent.code.parse().unwrap();
    let real: Vec<&str> = code.password().words().collect();
    let mut others = WORDS.iter().filter(|w| !real.contains(w));
    let wrong = format!(
        "{}-{}-{}",
        code.nameplate(),
        others.next().unwrap(),
        others.next().unwrap()
    );
    let out = console(&relay, &wrong, &["--exec", "quit"]);
    assert!(!out.status.success());
    agent.proc.wait(STEP);
    wait_metric(
        metrics,
        "sprijin_relay_sessions_ended_total{outcome=\"WrongCode\"}",
        1,
    );

    // Refused: a code no one is waiting with.
    let out = console(&relay, &unused_code(), &["--exec", "quit"]);
    assert!(!out.status.success());
    let text = wait_metric(
        metrics,
        "sprijin_relay_sessions_ended_total{outcome=\"Refused\"}",
        1,
    );
    assert_eq!(
        value(
            &text,
            "sprijin_relay_claims_refused_total{reason=\"UnknownNameplate\"}"
        ),
        1,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "sprijin_relay_sessions_ended_total{outcome=\"Completed\"}"
        ),
        1,
        "{text}"
    );
}

#[test]
fn every_program_prints_completions() {
    for program in PROGRAMS {
        for shell in ["bash", "zsh", "fish"] {
            let out = run(program, &["completions", shell]);
            assert!(out.status.success(), "{program} {shell}: {}", out.stderr);
            assert!(
                out.stdout.contains(program),
                "{program} {shell}: {}",
                out.stdout
            );
        }
        let bash = run(program, &["completions", "bash"]).stdout;
        assert!(bash.contains("complete -F"), "{bash}");
        assert!(bash.contains("--log-format"), "{bash}");
    }
}

#[test]
fn man_pages_cover_every_subcommand_and_every_flag_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for program in PROGRAMS {
        let out = run(program, &["man", dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{program}: {}", out.stderr);
    }
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for expected in [
        "sprijin-relay.1",
        "sprijin-relay-fingerprint.1",
        "sprijin-agent-share.1",
        "sprijin-agent-audit-verify.1",
        "sprijin-console-connect.1",
        "sprijin-console-catalog-sign.1",
        "sprijin-console-credential-issue.1",
    ] {
        assert!(pages.iter().any(|p| p == expected), "{expected}: {pages:?}");
    }
    assert!(!pages.iter().any(|p| p.contains("-man")), "{pages:?}");
    for page in &pages {
        let roff = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(roff.starts_with(".ie") || roff.contains(".TH"), "{page}");
        // An option or argument entry is `.TP`, its name, then its help
        // line; a name followed at once by the next entry has no help.
        let lines: Vec<&str> = roff.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if *line == ".TP" {
                let help = lines.get(i + 2).copied().unwrap_or(".SH");
                assert!(
                    !help.starts_with(".TP") && !help.starts_with(".SH"),
                    "{page}: {} has no help line",
                    lines[i + 1]
                );
            }
        }
    }
}

/// A shipped config file with every commented-out key turned on.
fn uncommented(shipped: &str, dir: &Path) -> std::path::PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../dist/config")
        .join(shipped);
    let text: String = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix('#')?;
            let (key, _) = l.split_once(" = ")?;
            (!key.contains(' ')).then(|| l.split(" # ").next().unwrap().to_string() + "\n")
        })
        .collect();
    let out = dir.join(shipped);
    write(&out, &text);
    out
}

#[test]
fn the_shipped_config_files_hold_only_known_keys() {
    let dir = tempfile::tempdir().unwrap();
    let relay = uncommented("relay.toml", dir.path());
    assert!(
        std::fs::read_to_string(&relay).unwrap().lines().count() >= 15,
        "too few keys found in the shipped relay.toml"
    );
    let data = dir.path().join("identity");
    let out = run(
        "sprijin-relay",
        &[
            "--config",
            relay.to_str().unwrap(),
            "fingerprint",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout.starts_with("sha256:"), "{}", out.stdout);

    let agent = uncommented("agent.toml", dir.path());
    let out = run(
        "sprijin-agent",
        &["share", "--config", agent.to_str().unwrap()],
    );
    // The sample's values are placeholders (a fingerprint to fill in, a key
    // file that is not here), but every key in it is known.
    assert!(!out.status.success());
    assert!(!out.stderr.contains("config file"), "{}", out.stderr);
    assert!(out.stderr.contains("fingerprint"), "{}", out.stderr);
}

#[test]
fn a_pair_whose_set_up_never_finishes_is_counted_as_idle() {
    let metrics = free_tcp_addr();
    let relay = RelayProc::start(&[
        "--metrics",
        &metrics.to_string(),
        "--handshake-timeout",
        "1",
    ]);
    let mut agent = AgentProc::start(&relay, &["y"], &[]);
    let code: SessionCode = agent.code.parse().unwrap();
    // A console that claims, is paired, and then never connects to the agent.
    block_on(async {
        let _link = claim(&relay.addr, &relay.fingerprint, &code).await;
        tokio::task::spawn_blocking(move || {
            wait_metric(
                metrics,
                "sprijin_relay_sessions_ended_total{outcome=\"Idle\"}",
                1,
            )
        })
        .await
        .unwrap();
    });
    let text = get_when_up(metrics, "/metrics");
    assert_eq!(
        value(
            &text,
            "sprijin_relay_sessions_ended_total{outcome=\"Completed\"}"
        ),
        0,
        "{text}"
    );
    // The agent is still waiting for a console that will not come.
    assert!(agent.proc.alive());
}
