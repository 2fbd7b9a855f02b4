//! Running the Windows programs under Wine, for the tests that need them
//! (ignored on a fresh machine; `.ci/run` builds the programs with
//! `dist/cross`, prepares a Wine prefix with `tests/wine/prepare` and runs
//! them with `--include-ignored`).
//!
//! `SPRIJIN_WINE_AGENT` names `sprijin-agent.exe`; `SPRIJIN_WINE` the Wine
//! program (default `/usr/lib/wine/wine64`); `WINEPREFIX` the prepared
//! prefix. Where Wine differs from Windows, the work-around is here, never
//! in the product.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{AgentProc, Proc, RelayProc};

const DEFAULT_WINE: &str = "/usr/lib/wine/wine64";

/// The Windows agent to test.
pub fn agent_exe() -> PathBuf {
    let exe = std::env::var_os("SPRIJIN_WINE_AGENT")
        .map(PathBuf::from)
        .expect("SPRIJIN_WINE_AGENT names the Windows agent (sprijin-agent.exe)");
    assert!(exe.is_file(), "no Windows agent at {}", exe.display());
    exe
}

/// Wine's program.
pub fn wine() -> PathBuf {
    std::env::var_os("SPRIJIN_WINE").map_or_else(|| PathBuf::from(DEFAULT_WINE), PathBuf::from)
}

/// A command that runs `exe` under Wine, quietly.
pub fn under_wine(exe: &Path) -> Command {
    let mut cmd = Command::new(wine());
    cmd.arg(exe)
        .env("WINEDEBUG", "-all")
        .env("WINEDLLOVERRIDES", "mscoree,mshtml=");
    cmd
}

/// `path` as the Windows programs see it: Wine shows the Linux root as
/// drive `Z:`.
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display().to_string().replace('/', "\\"))
}

/// Starts the Windows agent's `share` against `relay`, with its data
/// folder in a fresh temporary folder, typing `answers` at once; waits for
/// its code.
pub fn agent_under_wine(relay: &RelayProc, answers: &[&str], extra: &[&str]) -> AgentProc {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let mut cmd = under_wine(&agent_exe());
    cmd.args(["share", "--terminal", "--relay", &relay.addr])
        .args(["--relay-fingerprint", &relay.fingerprint])
        .args(["--data-dir", &windows_path(data_dir.path())])
        .args(extra);
    let mut proc = Proc::spawn(cmd);
    proc.answer(answers);
    let code = proc.code();
    AgentProc {
        proc,
        code,
        data_dir,
    }
}

/// The processes whose command line holds `needle`, by pid (Wine's
/// Windows processes are Linux processes too).
pub fn processes_with(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}
