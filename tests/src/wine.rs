//! Running the Windows build of the agent and console under Wine, for the
//! tests that need it (each `#[ignore]`d with the reason; `.ci/run` builds
//! the `.exe` files with `dist/cross windows-build` and runs them with
//! `--include-ignored`).
//!
//! One Wine prefix, `target/wine/prefix`, is made on first use and shared
//! by the test programs and later runs, with `WINEDEBUG=-all`. Wine 8 lacks
//! `bcryptprimitives.dll` (`ProcessPrng`, which Rust's standard library
//! imports), so a stand-in built with mingw from `wine/prng.c` goes into
//! the prefix: this is the harness working around Wine, never part of the
//! product.
//!
//! Environment: `SPRIJIN_WINDOWS_BIN` names the folder holding
//! `sprijin-agent.exe` and `sprijin-console.exe` (default: where
//! `dist/cross windows-build` puts them, a release build); `SPRIJIN_WINE`
//! the Wine program (default `/usr/lib/wine/wine64`); `SPRIJIN_WINE_PREFIX`
//! the prefix.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Debian's 64-bit Wine loader.
pub const DEFAULT_WINE: &str = "/usr/lib/wine/wine64";
/// The mingw C compiler that builds the `ProcessPrng` stand-in.
pub const MINGW_CC: &str = "x86_64-w64-mingw32-gcc";
/// The Windows target the `.exe` files are built for.
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// The Wine program.
pub fn wine() -> PathBuf {
    std::env::var_os("SPRIJIN_WINE").map_or_else(|| PathBuf::from(DEFAULT_WINE), PathBuf::from)
}

/// The folder that holds the Windows `.exe` files.
pub fn windows_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SPRIJIN_WINDOWS_BIN") {
        return PathBuf::from(dir);
    }
    // A release build: sysinfo 0.37 reads the user list through a null
    // slice where Wine has no logon sessions, which a debug build's checks
    // abort on (real Windows always has one).
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/cross/build")
        .join(WINDOWS_TARGET)
        .join("release")
}

/// The path of one Windows program (`sprijin-agent.exe`, ...); panics with
/// what to run when it is missing.
pub fn exe(name: &str) -> PathBuf {
    let path = windows_bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `dist/cross windows-build` (or set SPRIJIN_WINDOWS_BIN)",
        path.display()
    );
    path
}

/// The Wine prefix the tests share: made once, with the `ProcessPrng`
/// stand-in installed, and kept for later test programs and runs (a Wine 8
/// prefix is about 700 MB, so one per test program would fill a small disk).
/// The first call in each test process also waits for a server left by an
/// earlier process to end, so this process's programs start one of their
/// own (a window opened under a server started without a display is never
/// shown).
pub fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let dir = std::env::var_os("SPRIJIN_WINE_PREFIX").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wine/prefix"),
            PathBuf::from,
        );
        ready_prefix(&dir);
        dir
    })
}

/// Makes `prefix` if no earlier run finished making it, under a lock that
/// test programs running at once share, then waits for its server to end.
fn ready_prefix(prefix: &Path) {
    let parent = prefix.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .unwrap_or_else(|e| panic!("cannot make {}: {e}", parent.display()));
    let lock_path = parent.join("prefix.lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    let made = prefix.join(".made");
    if !made.is_file() {
        if prefix.exists() {
            std::fs::remove_dir_all(prefix)
                .unwrap_or_else(|e| panic!("cannot remove {}: {e}", prefix.display()));
        }
        make_prefix(prefix);
        std::fs::write(&made, b"")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", made.display()));
    }
    // The stand-in is built each time, so a change to its source is taken.
    build_prng(prefix);
    wait_for_server(prefix);
}

fn make_prefix(prefix: &Path) {
    let out = Command::new(wine())
        .args(["wineboot", "-i"])
        .envs(wine_env(prefix))
        .stdin(Stdio::null())
        .output()
        .expect("wine starts (install wine64)");
    assert!(
        out.status.success(),
        "wineboot -i failed ({}) making {}: {}",
        out.status,
        prefix.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    // wineboot leaves the prefix's server running with a desktop that has
    // no display; `ready_prefix` waits for it to end.
    let system32 = prefix.join("drive_c/windows/system32");
    assert!(system32.is_dir(), "wineboot made no {}", system32.display());
}

/// Waits until no Wine server runs for `prefix`.
fn wait_for_server(prefix: &Path) {
    let wineserver = wine().with_file_name("wineserver");
    let status = Command::new(&wineserver)
        .arg("-w")
        .envs(wine_env(prefix))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", wineserver.display()));
    assert!(status.success(), "wineserver -w failed: {status}");
}

/// Builds the `ProcessPrng` stand-in into the prefix's `system32`.
fn build_prng(prefix: &Path) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/wine");
    let out = prefix.join("drive_c/windows/system32/bcryptprimitives.dll");
    let status = Command::new(MINGW_CC)
        .args(["-O2", "-shared", "-o"])
        .arg(&out)
        .arg(src.join("prng.c"))
        .arg(src.join("prng.def"))
        .arg("-ladvapi32")
        .status()
        .expect("mingw builds the ProcessPrng stand-in (install gcc-mingw-w64-x86-64)");
    assert!(status.success(), "building the ProcessPrng stand-in failed");
}

fn wine_env(prefix: &Path) -> Vec<(&'static str, std::ffi::OsString)> {
    vec![
        ("WINEPREFIX", prefix.as_os_str().to_owned()),
        ("WINEDEBUG", "-all".into()),
        // No Mono or Gecko install prompts.
        ("WINEDLLOVERRIDES", "mscoree,mshtml=".into()),
    ]
}

/// A command that runs the Windows program `program` (a path, or a name
/// Wine knows such as `cmd.exe`) in this run's prefix.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let prefix = prefix();
    let mut cmd = Command::new(wine());
    cmd.arg(program).envs(wine_env(prefix));
    cmd
}

/// The Windows agent under Wine.
pub fn agent() -> Command {
    command(exe("sprijin-agent.exe"))
}

/// The Windows console under Wine.
pub fn console() -> Command {
    command(exe("sprijin-console.exe"))
}

/// The Windows path (`Z:\...`) Wine gives a Linux path.
pub fn windows_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// Starts the Windows agent's `share` against `relay`, at its terminal,
/// with its data folder in a fresh temporary folder, typing `answers` at
/// once; waits for its code.
pub fn agent_sharing(
    relay: &crate::RelayProc,
    answers: &[&str],
    extra: &[&str],
) -> crate::AgentProc {
    let data_dir = tempfile::tempdir().expect("a temporary folder");
    let mut cmd = agent();
    cmd.args(["share", "--terminal", "--relay", &relay.addr])
        .args(["--relay-fingerprint", &relay.fingerprint])
        .args(["--data-dir", &windows_path(data_dir.path())])
        .args(extra);
    let mut proc = crate::Proc::spawn(cmd);
    proc.answer(answers);
    let code = proc.code();
    crate::AgentProc {
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

/// Fails the test, loudly, unless `powershell.exe` in this run's prefix
/// really runs PowerShell: Wine 8's is a stub that prints nothing and
/// exits 0, and a test that took that for a run would pass on nothing.
pub fn require_real_powershell() {
    let out = command("powershell.exe")
        .args([
            "-NoProfile",
            "-NonInteractive",
            "-Command",
            "Write-Output (6*7)",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("wine runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.trim() == "42",
        "powershell.exe in the Wine prefix is not a real PowerShell (asked for 6*7, it printed {:?} \
         and exited with {}): Wine's powershell.exe is a stub, so no PowerShell script can be tested \
         here; install PowerShell in the prefix",
        said.trim(),
        out.status
    );
}
