//! The agent's window on a real X server (Xvfb, drawn by Mesa's software
//! OpenGL), with a real relay and console: the waiting screen shows, the
//! consent dialogs show, the person answers them from the keyboard, and
//! the audit log records the approvals. Screenshots are taken of the whole
//! screen and must not be blank.
//!
//! Xvfb, xdotool and ImageMagick are required (see `sprijin_tests::xvfb`):
//! these tests are ignored by `cargo test` and run by `.ci/run`.

use std::path::Path;

use sprijin_tests::faults::{home_full_of_cache, used_percent};
use sprijin_tests::xvfb::{
    Xvfb, press, press_after, shots, wait_allow_enabled, wait_end_shown, wait_logged,
};
use sprijin_tests::*;

/// `sprijin-agent share --window` on `x`'s display, trusting the sample
/// catalog, with its debug log on stderr (it says when a question can be
/// answered).
fn agent_with_window(x: &Xvfb, relay: &RelayProc, data_dir: &Path) -> Proc {
    let mut cmd = x.command(bin("sprijin-agent").to_str().unwrap());
    cmd.args([
        "--log-format",
        "json",
        "share",
        "--window",
        "--lang",
        "en",
        "--relay",
        &relay.addr,
        "--relay-fingerprint",
        &relay.fingerprint,
        "--trusted-key",
        dev_public_key().to_str().unwrap(),
        "--consent-timeout",
        "60",
    ])
    .arg("--data-dir")
    .arg(data_dir)
    .env("RUST_LOG", "sprijin_agent=debug")
    // Mesa's software renderer: no GPU here.
    .env("LIBGL_ALWAYS_SOFTWARE", "1");
    Proc::spawn(cmd)
}

#[test]
#[ignore = "needs Xvfb, xdotool, ImageMagick and Mesa, which a fresh machine lacks: .ci/run installs them and runs this with --include-ignored"]
fn the_window_shows_the_code_and_dialogs_and_keyboard_answers_are_recorded() {
    let x = Xvfb::start();
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (shots, _keep) = shots();
    let mut agent = agent_with_window(&x, &relay, data.path());
    let code = agent.code();

    // The waiting screen: the code in large type.
    let waiting = shots.join("window-waiting.png");
    let colours = x.screenshot_showing(&waiting, 16, None);
    assert!(colours >= 16, "the waiting screen looks blank");

    // The technician connects and asks to run a repair.
    let catalog = sample_catalog();
    let mut console = Proc::spawn({
        let mut cmd = console_command(
            &relay.addr,
            &relay.fingerprint,
            &code,
            &[
                "--name",
                "Ana Pop",
                "--catalog",
                catalog.to_str().unwrap(),
                "--exec",
                "run echo-test word=hello",
                "--exec",
                "quit",
            ],
        );
        cmd.env("XDG_DATA_HOME", data.path().join("console"));
        cmd
    });

    // First question: may the technician look. Tab goes from Deny (the
    // default) to Allow; Space presses it.
    wait_allow_enabled(&agent, 1);
    let view = shots.join("window-consent.png");
    x.screenshot_showing(&view, 16, Some(&waiting));
    press(&x, &agent, "Tab", "allow");

    // Second question: the repair, with its exact command.
    wait_allow_enabled(&agent, 2);
    let run = shots.join("window-run.png");
    let colours = x.screenshot_showing(&run, 16, Some(&view));
    assert!(colours >= 16, "the run dialog looks blank");
    press(&x, &agent, "Tab", "allow");

    let status = wait_end(&mut console, STEP, "the console");
    assert!(
        status.success(),
        "console failed: {}\n{}",
        console.stdout.text(),
        console.stderr.text()
    );
    assert!(
        console.stdout.text().contains("hello"),
        "{}",
        console.stdout.text()
    );

    // The audit log holds both approvals, the run and the end.
    let consents = audit_events(data.path(), "consent");
    assert_eq!(consents.len(), 2, "{consents:?}");
    assert!(consents.iter().all(|c| c["answer"] == true), "{consents:?}");
    assert_eq!(audit_events(data.path(), "run_start").len(), 1);
    assert_eq!(audit_events(data.path(), "run_end").len(), 1);
    assert_eq!(audit_events(data.path(), "session_end").len(), 1);

    // The end, with the audit head, stays on the screen until the person
    // closes the window (Tab to Close, Space); then the agent exits.
    wait_end_shown(&agent);
    let ended = shots.join("window-ended.png");
    x.screenshot_showing(&ended, 16, Some(&run));
    assert!(agent.alive(), "the window closed by itself");
    press(&x, &agent, "Tab", "close");
    agent_finishes(&mut agent);
}

#[test]
#[ignore = "needs Xvfb, xdotool, ImageMagick and Mesa, which a fresh machine lacks: .ci/run installs them and runs this with --include-ignored"]
fn end_session_in_the_window_says_goodbye_to_the_technician() {
    let x = Xvfb::start();
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut agent = agent_with_window(&x, &relay, data.path());
    let code = agent.code();
    let mut console = Proc::spawn(console_command(
        &relay.addr,
        &relay.fingerprint,
        &code,
        &["--name", "Ana Pop", "--exec", "diag"],
    ));
    // With the first question up, End session (first in the keyboard
    // order, before Deny) ends the session.
    wait_allow_enabled(&agent, 1);
    press(&x, &agent, "shift+Tab", "end");
    wait_end(&mut console, STEP, "the console");
    let ends = audit_events(data.path(), "session_end");
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["reason"], "the person ended the session");
    // Closing the window ends the agent.
    wait_end_shown(&agent);
    press(&x, &agent, "Tab", "close");
    agent_finishes(&mut agent);
}

#[test]
#[ignore = "needs Xvfb, xdotool, ImageMagick and Mesa, which a fresh machine lacks: .ci/run installs them and runs this with --include-ignored"]
fn the_check_screen_fixes_a_full_cache_from_the_keyboard_and_get_help_shares() {
    let x = Xvfb::start();
    let home = home_full_of_cache();
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (shots, _keep) = shots();
    let mut cmd = x.command(bin("sprijin-agent").to_str().unwrap());
    cmd.args([
        "--log-format",
        "json",
        "check",
        "--window",
        "--lang",
        "en",
        "--watch",
        "0",
        "--relay",
        &relay.addr,
        "--relay-fingerprint",
        &relay.fingerprint,
        "--trusted-key",
        dev_public_key().to_str().unwrap(),
        "--catalog",
        sample_catalog().to_str().unwrap(),
        "--consent-timeout",
        "60",
    ])
    .arg("--data-dir")
    .arg(data.path())
    .env("HOME", &home.path)
    .env_remove("XDG_CACHE_HOME")
    .env("RUST_LOG", "sprijin_agent=debug")
    .env("LIBGL_ALWAYS_SOFTWARE", "1");
    let mut agent = Proc::spawn(cmd);

    // The check screen: the full disk among the findings (other disks of
    // this machine may be full too), with a Fix for the person's cache.
    wait_logged(&agent, "the check's findings are on the screen", 1);
    let log = agent.stderr.text();
    let found = log
        .lines()
        .find(|l| l.contains("checked this computer"))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["found"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no findings logged: {log}"));
    let at = found
        .split(", ")
        .position(|f| f == "disk-nearly-full (fix: clear-my-cache)")
        .unwrap_or_else(|| panic!("no Fix for the cache: {found}"));
    let checked = shots.join("check.png");
    let colours = x.screenshot_showing(&checked, 16, None);
    assert!(colours >= 16, "the check screen looks blank");
    press_after(&x, &agent, "Tab", &format!("fix-{}", at + 1), 12);

    // The same question a technician's run gets; Tab from Deny to Allow.
    wait_allow_enabled(&agent, 1);
    let asked = shots.join("check-consent.png");
    x.screenshot_showing(&asked, 16, Some(&checked));
    press(&x, &agent, "Tab", "allow");

    // The repair runs, the machine is checked again, the record has it all.
    let deadline = std::time::Instant::now() + STEP;
    while audit_events(data.path(), "run_checked").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no check after the repair: {}",
            agent.stderr.text()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let starts = audit_events(data.path(), "run_start");
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert_eq!(
        (&starts[0]["by"], &starts[0]["script"]),
        (
            &serde_json::json!("person"),
            &serde_json::json!("clear-my-cache")
        )
    );
    assert_eq!(audit_events(data.path(), "run_checked")[0]["fixed"], true);
    let consents = audit_events(data.path(), "consent");
    assert_eq!(consents.len(), 1, "{consents:?}");
    assert_eq!(consents[0]["answer"], true);
    assert!(used_percent(&home.path) < 10, "the cache was not cleared");
    x.screenshot_showing(&shots.join("check-fixed.png"), 16, Some(&asked));

    // Get help: the same window shows a code; a technician connects, and
    // their report lists what the person ran.
    press_after(&x, &agent, "Tab", "get-help", 12);
    let code = agent.code();
    let mut console = Proc::spawn(console_command(
        &relay.addr,
        &relay.fingerprint,
        &code,
        &["--name", "Ana Pop", "--exec", "diag", "--exec", "quit"],
    ));
    wait_allow_enabled(&agent, 2);
    press(&x, &agent, "Tab", "allow");
    let status = wait_end(&mut console, STEP, "the console");
    assert!(status.success(), "{}", console.stderr.text());
    let report = console.stdout.text();
    assert!(
        report.contains("Run by the person since the last session")
            && report.contains("clear-my-cache (Delete old files from your cache): exited with status 0, the finding was gone after it"),
        "{report}"
    );
    assert_eq!(audit_events(data.path(), "session_end").len(), 1);
    wait_end_shown(&agent);
    press(&x, &agent, "Tab", "close");
    agent_finishes(&mut agent);
}
