//! A machine whose clock is days off, seen against the relay's time: the
//! agent runs under libfaketime three days in the past (only its wall
//! clock; timers keep the real monotonic clock), pairs with the real relay
//! and console, and the technician's findings say how far behind it is and
//! what will fail. The relay tells its time when it hands out the code.
//!
//! libfaketime is not on a fresh machine: `.ci/run` installs it and runs
//! this with `--include-ignored`; without it the test fails, never skips.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::Command;

use sprijin_tests::*;

/// Where Debian's libfaketime puts its library.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

#[test]
#[ignore = "needs libfaketime, which a fresh machine lacks: .ci/run installs it and runs this with --include-ignored"]
fn a_clock_three_days_behind_is_named_with_what_will_fail() {
    assert!(
        Path::new(LIBFAKETIME).is_file(),
        "{LIBFAKETIME} is missing: install libfaketime"
    );
    let relay = RelayProc::start(&[]);
    let data = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin("sprijin-agent"));
    cmd.args(["share", "--terminal", "--relay", &relay.addr])
        .args(["--relay-fingerprint", &relay.fingerprint])
        .arg("--data-dir")
        .arg(data.path())
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", "-3d")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let mut agent = Proc::spawn(cmd);
    agent.answer(&["y"]);
    let code = agent.code();
    let out = console(&relay, &code, &["--exec", "findings"]);
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(
            "The clock is 3d 0h behind the relay's: secure web sites and sign-ins will fail"
        ),
        "{}",
        out.stdout
    );
    agent_finishes(&mut agent);
}
