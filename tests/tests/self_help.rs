//! The person checks their machine and repairs it alone, at the terminal:
//! a real full disk (a tmpfs home whose cache fills it), the real agent's
//! `check` and `fix N`, the audit log, and a later session through a real
//! relay and console whose report lists the person's run.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sprijin_tests::faults::{home_full_of_cache, root_or_skip, used_percent};
use sprijin_tests::*;

/// `sprijin-agent ARGS` for the person whose home is `home`, with the
/// sample catalog installed and its key trusted.
fn agent(home: &Path, data: &Path, args: &[&str]) -> Command {
    agent_with(home, data, &sample_catalog(), &dev_public_key(), args)
}

/// `sprijin-agent ARGS` for the person whose home is `home`, with the
/// catalog folder `catalog` installed and `key` trusted.
fn agent_with(home: &Path, data: &Path, catalog: &Path, key: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("sprijin-agent"));
    cmd.args(args)
        .args(["--watch", "0", "--trusted-key"])
        .arg(key)
        .arg("--catalog")
        .arg(catalog)
        .arg("--data-dir")
        .arg(data)
        .env("HOME", home)
        .env_remove("XDG_CACHE_HOME")
        .env_remove("SPRIJIN_AGENT_CONFIG");
    cmd
}

/// The number `check` gave the full disk at `mount`, and its line.
fn numbered_finding(list: &str, mount: &str) -> usize {
    let line = list
        .lines()
        .find(|l| l.contains(&format!("Disk {mount} is")))
        .unwrap_or_else(|| panic!("no finding for {mount}:\n{list}"));
    line.split('.').next().unwrap().trim().parse().unwrap()
}

/// A session through a real relay and console after the person's own
/// repairs: the agent shares from the same data folder, the person lets
/// the technician look, and the console's `diag` report is returned once
/// the agent has ended.
fn next_session_report(home: &Path, data: &Path) -> String {
    let relay = RelayProc::start(&[]);
    let mut share = Proc::spawn({
        let mut cmd = Command::new(bin("sprijin-agent"));
        cmd.args([
            "share",
            "--terminal",
            "--relay",
            &relay.addr,
            "--relay-fingerprint",
            &relay.fingerprint,
        ])
        .arg("--data-dir")
        .arg(data)
        .env("HOME", home);
        cmd
    });
    share.answer(&["y"]);
    let code = share.code();
    let console = console(&relay, &code, &["--exec", "diag", "--exec", "quit"]);
    assert!(console.status.success(), "{}", console.stderr);
    agent_finishes(&mut share);
    console.stdout
}

#[test]
fn the_person_clears_their_cache_alone_and_the_next_session_sees_it() {
    if !root_or_skip() {
        return;
    }
    let home = home_full_of_cache();
    let mount = home.mount_point();
    assert!(used_percent(&home.path) >= 90);
    let data = tempfile::tempdir().unwrap();

    // check: the full disk, most important first, with the repair the
    // organisation lets the person run, and its number.
    let checked = run_to_end(agent(&home.path, data.path(), &["check", "--terminal"]));
    assert!(checked.status.success(), "{}", checked.stderr);
    let n = numbered_finding(&checked.stdout, &mount);
    assert!(
        checked.stdout.contains(&format!(
            "you may fix it: Delete old files from your cache (`sprijin-agent fix {n}`)"
        )),
        "{}",
        checked.stdout
    );
    assert!(
        checked
            .stdout
            .contains(&format!("{n}. [critical] Disk {mount}"))
    );
    // Nothing is recorded by a look.
    assert!(audit_events(data.path(), "run_start").is_empty());

    // fix N: the same question as a technician's run, answered here.
    let mut fix = Proc::spawn(agent(&home.path, data.path(), &["fix", &n.to_string()]));
    fix.stdout
        .wait_for("  stops after", STEP)
        .unwrap_or_else(|| panic!("no question: {}\n{}", fix.stdout.text(), fix.stderr.text()));
    let asked = fix.stdout.text();
    assert!(
        asked.contains("you asked to run a repair script:"),
        "{asked}"
    );
    assert!(
        asked.contains(&format!(
            "command: find {mount}/.cache -xdev -type f -mtime +7 -delete"
        )),
        "{asked}"
    );
    assert!(asked.contains("risk: low") && asked.contains("stops after 300 s"));
    fix.answer(&["y"]);
    let status = wait_end(&mut fix, STEP, "fix");
    assert!(
        status.success(),
        "{}\n{}",
        fix.stdout.text(),
        fix.stderr.text()
    );
    assert!(
        fix.stdout
            .text()
            .contains("fixed: the finding is gone (exited with status 0)"),
        "{}",
        fix.stdout.text()
    );
    assert!(used_percent(&home.path) < 10, "the cache was not cleared");
    assert!(home.path.join(".cache/browser").is_dir(), "folders stay");

    // The record: the yes, the run by the person, its end, the check after.
    let starts = audit_events(data.path(), "run_start");
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(starts[0]["by"], "person");
    assert_eq!(starts[0]["script"], "clear-my-cache");
    assert_eq!(starts[0]["args"][0], format!("{mount}/.cache"));
    let run = starts[0]["run"].clone();
    let ends = audit_events(data.path(), "run_end");
    assert_eq!((ends.len(), &ends[0]["run"]), (1, &run));
    let checks = audit_events(data.path(), "run_checked");
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(
        (
            &checks[0]["run"],
            &checks[0]["finding"],
            &checks[0]["fixed"]
        ),
        (
            &run,
            &serde_json::json!("disk-nearly-full"),
            &serde_json::json!(true)
        )
    );
    assert!(audit_verify(data.path()).status.success());

    // The next session: the technician's report lists the person's run.
    let report = next_session_report(&home.path, data.path());
    let (_, runs) = report
        .split_once("Run by the person since the last session")
        .unwrap_or_else(|| panic!("no runs of the person:\n{report}"));
    assert!(
        runs.contains(
            "clear-my-cache (Delete old files from your cache): exited with status 0, the finding was gone after it"
        ),
        "{runs}"
    );
}

#[test]
fn fix_refuses_a_number_it_was_not_shown_in_one_line() {
    let home = tempfile::Builder::new()
        .prefix("sprijin-home")
        .tempdir()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let one_line = |out: &ConsoleOutput, want: &str| {
        assert!(!out.status.success(), "{}", out.stdout);
        let err = out.stderr.trim();
        assert!(err.contains(want), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    };
    // No check yet: no list to take the number from.
    let out = run_to_end(agent(home.path(), data.path(), &["fix", "1"]));
    one_line(&out, "run `sprijin-agent check` first");
    let checked = run_to_end(agent(home.path(), data.path(), &["check", "--terminal"]));
    assert!(checked.status.success(), "{}", checked.stderr);
    let out = run_to_end(agent(home.path(), data.path(), &["fix", "999"]));
    one_line(&out, "there is no finding 999: the last check found");
    assert!(audit_events(data.path(), "run_start").is_empty());
}

#[test]
fn fix_n_is_the_finding_the_person_saw_and_a_gone_one_is_not_fixed() {
    if !root_or_skip() {
        return;
    }
    let home = home_full_of_cache();
    let data = tempfile::tempdir().unwrap();
    let checked = run_to_end(agent(&home.path, data.path(), &["check", "--terminal"]));
    let n = numbered_finding(&checked.stdout, &home.mount_point());
    // The person cleared the cache another way since the check.
    std::fs::remove_dir_all(home.path.join(".cache/browser")).unwrap();
    let out = run_to_end(agent(&home.path, data.path(), &["fix", &n.to_string()]));
    assert!(!out.status.success(), "{}", out.stdout);
    let err = out.stderr.trim();
    assert!(
        err.contains(&format!("finding {n} (Disk {} is", home.mount_point()))
            && err.ends_with("is no longer there: nothing to fix"),
        "{err}"
    );
    assert!(!out.stdout.contains("allow?"), "{}", out.stdout);
    assert!(audit_events(data.path(), "run_start").is_empty());
}

#[test]
fn a_flag_changed_after_signing_is_refused_and_nothing_is_offered() {
    if !root_or_skip() {
        return;
    }
    let home = home_full_of_cache();
    let data = tempfile::tempdir().unwrap();
    let catalog = TestCatalog::sample_copy();
    // The organisation did not sign this: the flag comes off a script and
    // goes onto another after the signature.
    let path = catalog.dir.join("clear-my-cache.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("self_service = true\n", "")).unwrap();
    let out = run_to_end(agent_with(
        &home.path,
        data.path(),
        &catalog.dir,
        &dev_public_key(),
        &["check", "--terminal"],
    ));
    assert!(out.status.success(), "{}", out.stderr);
    assert!(!out.stdout.contains("you may fix it"), "{}", out.stdout);
    assert!(
        out.stdout.lines().any(
            |l| l.starts_with("note: the repair catalog is refused") && l.contains("signature")
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn started_without_a_command_it_checks_this_computer() {
    let home = tempfile::Builder::new()
        .prefix("sprijin-home")
        .tempdir()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("sprijin-agent"));
    cmd.env("HOME", home.path())
        .env("XDG_DATA_HOME", data.path())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("SPRIJIN_AGENT_CONFIG");
    let out = run_to_end(cmd);
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("checking this computer for 3 s..."),
        "{}",
        out.stdout
    );
    // No catalog yet: the findings, and why nothing can be fixed alone.
    assert!(
        out.stdout
            .contains("note: no repair catalog is on this machine yet"),
        "{}",
        out.stdout
    );
}

/// The person's repair, signed for this test: it writes its pid and its
/// child's into the cache folder the finding names, then waits.
const SLOW_REPAIR: &str = r#"
id = "clear-my-cache"
title = "Wait a long time"
description = "Starts a child that sleeps, writes both pids and waits."
risk = "low"
self_service = true
platforms = ["linux"]
timeout_secs = 600
program = "sh"
args = ["-c", 'echo $$ > "$1/leader"; sleep 600 & echo $! > "$1/child"; wait', "sh", "{dir}"]

[params.dir]
from = "finding"
pattern = '^/[A-Za-z0-9._/-]{1,200}$'
"#;

#[test]
fn a_repair_killed_mid_run_leaves_no_process_and_the_next_session_hears_it_did_not_finish() {
    if !root_or_skip() {
        return;
    }
    let home = home_full_of_cache();
    let data = tempfile::tempdir().unwrap();
    let catalog = TestCatalog::signed(&[("clear-my-cache", SLOW_REPAIR)]);
    let checked = run_to_end(agent_with(
        &home.path,
        data.path(),
        &catalog.dir,
        &catalog.public,
        &["check", "--terminal"],
    ));
    let n = numbered_finding(&checked.stdout, &home.mount_point());
    let mut fix = Proc::spawn(agent_with(
        &home.path,
        data.path(),
        &catalog.dir,
        &catalog.public,
        &["fix", &n.to_string()],
    ));
    fix.stdout
        .wait_for("  stops after", STEP)
        .unwrap_or_else(|| panic!("no question: {}\n{}", fix.stdout.text(), fix.stderr.text()));
    fix.answer(&["y"]);
    let cache = home.path.join(".cache");
    let leader = wait_for_pid_file(&cache.join("leader"), STEP).expect("the repair started");
    let child = wait_for_pid_file(&cache.join("child"), STEP).expect("its child started");
    assert_eq!(audit_events(data.path(), "run_start")[0]["by"], "person");

    // SIGKILL: nothing of the run outlives the agent.
    fix.child.kill().unwrap();
    for pid in [leader, child] {
        assert!(
            wait_until_gone(pid, Duration::from_secs(10)),
            "process {pid} of the repair outlived the agent"
        );
    }
    assert!(audit_events(data.path(), "run_end").is_empty());
    assert!(audit_verify(data.path()).status.success());

    // The next session records the run as unfinished and tells the technician.
    let report = next_session_report(&home.path, data.path());
    assert!(
        report.contains(
            "clear-my-cache (Wait a long time): did not finish: the agent stopped during it"
        ),
        "{report}"
    );
    let unfinished = audit_events(data.path(), "run_unfinished");
    assert_eq!(unfinished.len(), 1, "{unfinished:?}");
}

#[test]
fn no_repair_runs_when_its_record_cannot_be_written() {
    if !root_or_skip() {
        return;
    }
    let home = home_full_of_cache();
    let data = sprijin_tests::faults::Tmpfs::mount("size=256k");
    // The person checks, then the data folder's disk fills.
    let checked = run_to_end(agent(&home.path, &data.path, &["check", "--terminal"]));
    let n = numbered_finding(&checked.stdout, &home.mount_point());
    let _ = std::fs::write(data.path.join("filler"), vec![0u8; 512 * 1024]);
    let out = run_to_end(agent(&home.path, &data.path, &["fix", &n.to_string()]));
    assert!(!out.status.success(), "{}", out.stdout);
    let err = out.stderr.trim();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("audit"), "{err}");
    assert!(
        !out.stdout.contains("allow?"),
        "asked before it could record: {}",
        out.stdout
    );
    assert!(used_percent(&home.path) >= 90, "something ran");
}

#[test]
fn at_a_real_terminal_a_yes_typed_before_the_question_is_not_an_answer() {
    if !root_or_skip() || !sprijin_tests::tmux::have_tmux() {
        return;
    }
    let home = home_full_of_cache();
    let data = tempfile::tempdir().unwrap();
    let checked = run_to_end(agent(&home.path, data.path(), &["check", "--terminal"]));
    let n = numbered_finding(&checked.stdout, &home.mount_point());
    let command = format!(
        "HOME={} {} fix {n} --watch 3 --trusted-key {} --catalog {} --data-dir {}; echo EXITED-$?; sleep 60",
        home.path.display(),
        bin("sprijin-agent").display(),
        dev_public_key().display(),
        sample_catalog().display(),
        data.path().display()
    );
    let tmux = sprijin_tests::tmux::Tmux::start("fix", (160, 40), &command);
    // Typed while the machine is checked, before any question.
    tmux.wait_for("checking this computer", STEP);
    tmux.type_line("y");
    tmux.wait_for("allow? [y/N]", STEP);
    std::thread::sleep(Duration::from_millis(1500));
    let screen = tmux.screen();
    assert!(!screen.contains("approved"), "{screen}");
    assert!(audit_events(data.path(), "run_start").is_empty());
    // The answer typed at the question is.
    tmux.type_line("y");
    let screen = tmux.wait_for("EXITED-", STEP);
    assert!(screen.contains("EXITED-0"), "{screen}");
    assert!(screen.contains("fixed: the finding is gone"), "{screen}");
    assert_eq!(audit_events(data.path(), "run_start")[0]["by"], "person");
}
