//! The Windows agent's window under Wine on a real X server (Xvfb, Mesa's
//! software OpenGL behind Wine's `opengl32`), against the real Linux relay
//! and console on 127.0.0.1: the waiting screen is drawn, the person's
//! question shows, the keyboard answers it, and the audit log records it.
//!
//! They need Wine, the Windows build, Xvfb, xdotool and ImageMagick, which
//! a fresh machine lacks: `.ci/run` installs and builds them and runs these
//! with `--include-ignored`.

use sprijin_tests::wine::{self, windows_path};
use sprijin_tests::xvfb::{Xvfb, press, shots, wait_allow_enabled, wait_end_shown};
use sprijin_tests::*;

/// The Windows agent sharing with its window on `x`'s display, in
/// `lang`, with its debug log on stderr (it says when a question can be
/// answered and which button has the keyboard).
fn windows_agent_with_window(x: &Xvfb, relay: &RelayProc, data_dir: &std::path::Path) -> Proc {
    let mut cmd = wine::agent();
    cmd.args(["--log-format", "json", "share", "--window", "--lang", "ro"])
        .args(["--relay", &relay.addr])
        .args(["--relay-fingerprint", &relay.fingerprint])
        .args(["--consent-timeout", "120"])
        .args(["--data-dir", &windows_path(data_dir)])
        .env("DISPLAY", x.display())
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "sprijin_agent=debug")
        .env("LIBGL_ALWAYS_SOFTWARE", "1");
    Proc::spawn(cmd)
}

#[test]
#[ignore = "needs Wine, the Windows build, Xvfb, xdotool and ImageMagick, which a fresh machine lacks: run by .ci/run with --include-ignored"]
fn the_windows_window_draws_and_the_keyboard_answers_its_question() {
    let x = Xvfb::start();
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let (shots, _keep) = shots();
    let mut agent = windows_agent_with_window(&x, &relay, data.path());
    let code = agent.code();

    // The waiting screen with the code: drawn, not blank.
    let waiting = shots.join("wine-window-waiting.png");
    let colours = x.screenshot_showing(&waiting, 16, None);
    assert!(colours >= 16, "the waiting screen looks blank");

    // The technician asks for a report; the person's question shows and
    // the keyboard answers it (Tab from Deny to Allow, Space).
    let mut console = Proc::spawn(console_command(
        &relay.addr,
        &relay.fingerprint,
        &code,
        &["--name", "Ana Pop", "--exec", "diag", "--exec", "quit"],
    ));
    wait_allow_enabled(&agent, 1);
    let asking = shots.join("wine-window-consent.png");
    x.screenshot_showing(&asking, 16, Some(&waiting));
    press(&x, &agent, "Tab", "allow");

    let status = wait_end(&mut console, STEP * 3, "the console");
    let report = console.stdout.text();
    assert!(
        status.success(),
        "console failed: {report}\n{}",
        console.stderr.text()
    );
    assert!(
        report.contains("Windows"),
        "the report is not from Windows sources: {report}"
    );

    let consents = audit_events(data.path(), "consent");
    assert_eq!(consents.len(), 1, "{consents:?}");
    assert_eq!(consents[0]["answer"], true, "{consents:?}");
    assert_eq!(audit_events(data.path(), "session_end").len(), 1);

    // The end stays on the screen until the person closes the window.
    wait_end_shown(&agent);
    assert!(agent.alive(), "the window closed by itself");
    press(&x, &agent, "Tab", "close");
    agent_finishes(&mut agent);
}
