//! A PowerShell script from the shipped catalog, run by the Windows agent
//! under Wine against the real Linux relay and console.
//!
//! Wine 8's `powershell.exe` is a stub that prints nothing and exits 0, so
//! this test first makes sure PowerShell is real and fails loudly when it
//! is not: it cannot pass on Wine's stub. No real PowerShell can be put in
//! a Wine prefix on this machine, so `.ci/run` does not run it; run it with
//! `--include-ignored` where one is installed.

use sprijin_tests::wine::{self, agent_sharing, windows_path};
use sprijin_tests::*;

#[test]
#[ignore = "needs a real PowerShell in the Wine prefix (Wine 8's powershell.exe is a stub, which this test refuses): run with --include-ignored where one is installed"]
fn a_powershell_script_from_the_catalog_runs_with_its_output() {
    wine::require_real_powershell();
    let relay = RelayProc::start(&[]);
    let key = windows_path(&dev_public_key());
    let mut agent = agent_sharing(&relay, &["y", "y"], &["--trusted-key", &key]);
    let catalog = sample_catalog();
    let out = console(
        &relay,
        &agent.code,
        &[
            "--catalog",
            catalog.to_str().unwrap(),
            "--exec",
            r"run windows-largest-folders path=C:\windows",
        ],
    );
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    // Format-Table's header, and at least one folder of C:\windows.
    assert!(out.stdout.contains("GiB"), "{}", out.stdout);
    assert!(out.stdout.contains(r"C:\windows\"), "{}", out.stdout);
    wait_end(&mut agent.proc, STEP * 3, "the Windows agent");
    let ends = audit_events(agent.data_dir.path(), "run_end");
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["status"], "exited with status 0", "{ends:?}");
}
