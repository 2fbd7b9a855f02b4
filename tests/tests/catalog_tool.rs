//! The catalog tooling end to end: the committed sample catalog must verify
//! with the committed development key (so an edit without re-signing fails
//! here first), and the real `sprijin-console catalog keygen|sign|verify`
//! binary must behave as the command-line contract says.
//!
//! Build the binaries first: `cargo build --workspace --bins`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use sprijin_console::catalog_tool;
use sprijin_proto::catalog::{self, Risk};

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog")
}

fn console() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("sprijin-console");
    assert!(
        bin.is_file(),
        "{} is missing; run `cargo build --workspace --bins` first",
        bin.display()
    );
    bin
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut command = Command::new(console());
    for arg in args {
        command.arg(arg);
    }
    command.env_remove("RUST_LOG").output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "expected success, got {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A failed command exits non-zero with one `error: ...` line on stderr.
fn error_line(output: &Output) -> String {
    assert!(!output.status.success(), "expected failure: {output:?}");
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0].to_owned()
}

/// A temporary copy of the sample scripts, unsigned, with a fresh key pair.
struct Workspace {
    _root: tempfile::TempDir,
    dir: PathBuf,
    key: PathBuf,
    public: PathBuf,
}

fn workspace() -> Workspace {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("catalog");
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(sample_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let key = root.path().join("team.key");
    let public = root.path().join("team.key.pub");
    stdout(&run(&[&"catalog", &"keygen", &key]));
    Workspace {
        _root: root,
        dir,
        key,
        public,
    }
}

fn sign(ws: &Workspace) -> String {
    stdout(&run(&[&"catalog", &"sign", &ws.dir, &"--key", &ws.key]))
}

fn verify(ws: &Workspace, public: &Path) -> Output {
    run(&[&"catalog", &"verify", &ws.dir, &"--key", &public])
}

const SAMPLE_IDS: [&str; 27] = [
    "flush-dns",
    "restart-unit",
    "list-failed-units",
    "journal-vacuum",
    "clear-user-cache",
    "clear-my-cache",
    "test-connectivity",
    "largest-folders",
    "stop-process",
    "disk-usage",
    "echo-test",
    "sleep-test",
    "folders-with-most-files",
    "list-deleted-open-files",
    "list-open-files",
    "turn-on-time-sync",
    "dpkg-configure",
    "windows-clear-temp",
    "windows-flush-dns",
    "windows-largest-folders",
    "windows-renew-address",
    "windows-restart-computer",
    "windows-restart-spooler",
    "windows-start-service",
    "windows-stop-process",
    "windows-sync-time",
    "windows-test-connectivity",
];

fn sample_catalog() -> catalog::Catalog {
    let signed = catalog_tool::load(&sample_dir()).unwrap();
    let key = catalog_tool::read_public_key(&sample_dir().join("dev-key.pub")).unwrap();
    catalog::verify(&signed, &[key], SystemTime::now()).unwrap()
}

#[test]
fn committed_sample_catalog_verifies_with_the_dev_key() {
    const SIGN_AGAIN: &str = "after editing catalog/, run `sprijin-console catalog sign catalog --key catalog/dev-key --expires 2100-01-01`";
    let summary = catalog_tool::verify(
        &sample_dir(),
        &sample_dir().join("dev-key.pub"),
        SystemTime::now(),
    )
    .unwrap_or_else(|err| panic!("{err}; {SIGN_AGAIN}"));
    assert_eq!(summary.scripts, SAMPLE_IDS.len());
    // The demo and the tests use this signature as it is committed, so it
    // must not be one that expires with the default 90 days.
    let ten_years = Duration::from_secs(10 * 365 * 24 * 60 * 60);
    assert!(
        summary.expires_at > SystemTime::now() + ten_years,
        "the committed sample expires on {}; {SIGN_AGAIN}",
        catalog::format_time(summary.expires_at)
    );
    let secret =
        catalog::parse_signing_key(&fs::read_to_string(sample_dir().join("dev-key")).unwrap())
            .unwrap();
    let public = catalog_tool::read_public_key(&sample_dir().join("dev-key.pub")).unwrap();
    assert_eq!(
        secret.verifying_key(),
        public,
        "dev-key.pub belongs to dev-key"
    );
}

#[test]
fn sample_catalog_has_the_ids_other_code_uses_with_honest_risks() {
    let sample = sample_catalog();
    for id in SAMPLE_IDS {
        let script = sample.get(id).unwrap_or_else(|| panic!("{id} is missing"));
        // Each script is made for one platform: Windows' ids say so.
        let platform = if id.starts_with("windows-") {
            catalog::Platform::Windows
        } else {
            catalog::Platform::Linux
        };
        assert_eq!(script.platforms, [platform], "{id}");
        if platform == catalog::Platform::Windows {
            let shell = (
                script.program.as_str(),
                script.args.first().map(String::as_str),
            );
            assert!(
                shell == ("cmd.exe", Some("/c"))
                    || (script.program == "powershell.exe"
                        && script.args[..4]
                            == [
                                "-NoProfile",
                                "-NonInteractive",
                                "-ExecutionPolicy",
                                "Bypass"
                            ]),
                "{id} runs {shell:?}"
            );
        }
    }
    let risk = |id| sample.get(id).unwrap().risk;
    assert_eq!(risk("stop-process"), Risk::High);
    for id in [
        "restart-unit",
        "journal-vacuum",
        "clear-user-cache",
        "turn-on-time-sync",
    ] {
        assert_eq!(risk(id), Risk::Medium, "{id}");
    }
    for id in [
        "folders-with-most-files",
        "list-deleted-open-files",
        "list-open-files",
        "flush-dns",
        "list-failed-units",
        "disk-usage",
        "echo-test",
        "sleep-test",
    ] {
        assert_eq!(risk(id), Risk::Low, "{id}");
    }
    for id in ["windows-stop-process", "windows-restart-computer"] {
        assert_eq!(risk(id), Risk::High, "{id}");
    }
    for id in [
        "windows-clear-temp",
        "windows-restart-spooler",
        "windows-start-service",
        "windows-renew-address",
        "windows-sync-time",
    ] {
        assert_eq!(risk(id), Risk::Medium, "{id}");
    }
    for id in [
        "windows-flush-dns",
        "windows-test-connectivity",
        "windows-largest-folders",
    ] {
        assert_eq!(risk(id), Risk::Low, "{id}");
    }
    assert_eq!(sample.get("sleep-test").unwrap().timeout_secs, 5);
}

#[test]
fn windows_scripts_take_only_values_cmd_and_powershell_read_as_plain_text() {
    let sample = sample_catalog();
    let bind = |id: &str, pairs: &[(&str, &str)]| {
        let values: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sample.get(id).unwrap().bind(&values)
    };
    assert_eq!(
        bind("windows-start-service", &[("service", "Spooler")]).unwrap(),
        ["/c", "net", "start", "Spooler"]
    );
    assert_eq!(
        bind("windows-stop-process", &[("pid", "4242")]).unwrap(),
        ["/c", "taskkill", "/PID", "4242"]
    );
    assert_eq!(
        bind(
            "windows-clear-temp",
            &[("dir", r"C:\Users\Ana Pop\AppData\Local\Temp")]
        )
        .unwrap(),
        [
            "/c",
            "del",
            "/q",
            "/f",
            "/s",
            r"C:\Users\Ana Pop\AppData\Local\Temp\*"
        ]
    );
    let largest = bind("windows-largest-folders", &[("path", r"C:\Users\ana")]).unwrap();
    assert_eq!(largest.last().unwrap(), r"'C:\Users\ana'");
    assert!(bind("windows-largest-folders", &[("path", "C:\\")]).is_ok());
    for (id, key, value) in [
        ("windows-start-service", "service", "Spooler & calc"),
        ("windows-start-service", "service", "-x"),
        ("windows-stop-process", "pid", "0"),
        ("windows-stop-process", "pid", "4"),
        ("windows-stop-process", "pid", "1 /F"),
        ("windows-clear-temp", "dir", r"C:\Windows"),
        (
            "windows-clear-temp",
            "dir",
            r"C:\Users\..\AppData\Local\Temp",
        ),
        (
            "windows-clear-temp",
            "dir",
            r"C:\Users\a%b%\AppData\Local\Temp",
        ),
        ("windows-largest-folders", "path", r"C:\x'; calc; '"),
        ("windows-largest-folders", "path", r"C:\$(calc)"),
        ("windows-largest-folders", "path", r"C:\a\..\b"),
        ("windows-test-connectivity", "host", "example.org & calc"),
    ] {
        assert!(
            bind(id, &[(key, value)]).is_err(),
            "{id} accepted {key}={value:?}"
        );
    }
}

#[test]
fn sample_scripts_bind_what_they_are_for_and_nothing_else() {
    let sample = sample_catalog();
    let bind = |id: &str, pairs: &[(&str, &str)]| {
        let values: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sample.get(id).unwrap().bind(&values)
    };
    let ok = |id: &str, pairs: &[(&str, &str)], expected: &[&str]| {
        assert_eq!(bind(id, pairs).unwrap(), expected, "{id} {pairs:?}");
    };
    let refused = |id: &str, pairs: &[(&str, &str)]| {
        assert!(bind(id, pairs).is_err(), "{id} accepted {pairs:?}");
    };

    ok("flush-dns", &[], &["flush-caches"]);
    ok("echo-test", &[("word", "hello")], &["sprijin", "hello"]);
    ok("sleep-test", &[("secs", "10")], &["10"]);
    ok("disk-usage", &[], &["-h"]);
    ok("list-failed-units", &[], &["--failed", "--no-pager"]);
    ok(
        "restart-unit",
        &[("unit", "cups.service")],
        &["restart", "cups.service"],
    );
    ok(
        "restart-unit",
        &[("unit", "getty@tty1.service")],
        &["restart", "getty@tty1.service"],
    );
    ok(
        "journal-vacuum",
        &[("size", "500M")],
        &["--vacuum-size=500M"],
    );
    ok(
        "clear-user-cache",
        &[("dir", "/home/ana/.cache"), ("days", "30")],
        &["/home/ana/.cache", "-type", "f", "-mtime", "+30", "-delete"],
    );
    ok(
        "clear-user-cache",
        &[("dir", "/root/.cache"), ("days", "0")],
        &["/root/.cache", "-type", "f", "-mtime", "+0", "-delete"],
    );
    ok(
        "test-connectivity",
        &[("host", "example.org")],
        &["-c", "4", "-W", "2", "example.org"],
    );
    ok(
        "test-connectivity",
        &[("host", "192.168.1.1")],
        &["-c", "4", "-W", "2", "192.168.1.1"],
    );
    ok(
        "largest-folders",
        &[("path", "/")],
        &["-x", "-h", "-d", "1", "/"],
    );
    ok(
        "largest-folders",
        &[("path", "/home/ana/.local")],
        &["-x", "-h", "-d", "1", "/home/ana/.local"],
    );
    ok("stop-process", &[("pid", "4242")], &["-TERM", "4242"]);
    ok(
        "folders-with-most-files",
        &[("path", "/var")],
        &["--inodes", "-x", "-d", "1", "/var"],
    );
    ok("turn-on-time-sync", &[], &["set-ntp", "true"]);
    for id in ["list-deleted-open-files", "list-open-files"] {
        let args = bind(id, &[("pid", "812")]).unwrap();
        assert_eq!(args.len(), 4, "{id}: {args:?}");
        assert_eq!(
            &args[2..],
            ["sh", "812"],
            "{id}: the pid is an argument, not code"
        );
        refused(id, &[("pid", "0")]);
        refused(id, &[("pid", "1; reboot")]);
        refused(id, &[("pid", "self")]);
    }
    refused("folders-with-most-files", &[("path", "/var/../etc")]);

    refused("echo-test", &[("word", "a; rm -rf /")]);
    refused("echo-test", &[("word", "$(id)")]);
    refused("echo-test", &[("word", "a\nb")]);
    refused("echo-test", &[("word", "")]);
    refused("echo-test", &[]);
    refused("echo-test", &[("word", "hi"), ("extra", "x")]);
    refused("sleep-test", &[("secs", "1000")]);
    refused("restart-unit", &[("unit", "--force")]);
    refused("restart-unit", &[("unit", "cups; reboot")]);
    refused("journal-vacuum", &[("size", "1T")]);
    refused("journal-vacuum", &[("size", "500M --rotate")]);
    for dir in [
        "/home/ana/.cache/../../../etc",
        "/home/ana/.cache/",
        "/home/ana/.cache/thumbnails",
        "/home/../etc/.cache",
        "/etc",
        "../etc",
        "/home/ana/.config",
    ] {
        refused("clear-user-cache", &[("dir", dir), ("days", "30")]);
    }
    refused(
        "clear-user-cache",
        &[("dir", "/root/.cache"), ("days", "-1")],
    );
    for host in ["-f", "a b", "host;id", "a..b", "-c1000"] {
        refused("test-connectivity", &[("host", host)]);
    }
    for path in [
        "../etc",
        "/home/..",
        "/home/../etc",
        "relative",
        "/a/./b/",
        "/a b",
    ] {
        refused("largest-folders", &[("path", path)]);
    }
    for pid in ["1", "0", "-1", "01", "1 2", "12345678901"] {
        refused("stop-process", &[("pid", pid)]);
    }
}

#[test]
fn keygen_writes_a_private_secret_key_and_a_public_key() {
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("team.key");
    let line = stdout(&run(&[&"catalog", &"keygen", &key]));
    assert!(line.contains("team.key.pub"), "{line}");
    let secret = fs::read_to_string(&key).unwrap();
    assert!(secret.starts_with("sprijin-catalog-secret-key ed25519 "));
    let public = fs::read_to_string(root.path().join("team.key.pub")).unwrap();
    assert!(public.starts_with("sprijin-catalog-key ed25519 "));
    assert_eq!(
        catalog::parse_signing_key(&secret).unwrap().verifying_key(),
        catalog::parse_verifying_key(&public).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the secret key is readable by its owner only"
        );
    }
}

#[test]
fn keygen_refuses_to_overwrite_a_key() {
    let ws = workspace();
    let before = fs::read(&ws.key).unwrap();
    let error = error_line(&run(&[&"catalog", &"keygen", &ws.key]));
    assert!(error.contains("refusing to overwrite"), "{error}");
    assert_eq!(fs::read(&ws.key).unwrap(), before);
}

#[test]
fn sign_then_verify_succeeds() {
    let ws = workspace();
    let signed = sign(&ws);
    assert!(signed.starts_with("signed 27 scripts in "), "{signed}");
    assert!(ws.dir.join("catalog.sig").is_file());
    let verified = stdout(&verify(&ws, &ws.public));
    assert!(verified.contains("verifies: 27 scripts"), "{verified}");
}

#[test]
fn editing_a_script_after_signing_fails_verify() {
    let ws = workspace();
    sign(&ws);
    let path = ws.dir.join("echo-test.toml");
    let edited = fs::read_to_string(&path)
        .unwrap()
        .replace("\"echo\"", "\"rm\"");
    fs::write(&path, edited).unwrap();
    let error = error_line(&verify(&ws, &ws.public));
    assert!(error.contains("does not match its files"), "{error}");
    assert!(
        error.contains("changed, added, removed or renamed after signing"),
        "{error}"
    );
}

#[test]
fn adding_or_removing_a_script_after_signing_fails_verify() {
    let ws = workspace();
    sign(&ws);
    fs::copy(ws.dir.join("echo-test.toml"), ws.dir.join("extra.toml")).unwrap();
    error_line(&verify(&ws, &ws.public));
    fs::remove_file(ws.dir.join("extra.toml")).unwrap();
    stdout(&verify(&ws, &ws.public));
    fs::remove_file(ws.dir.join("stop-process.toml")).unwrap();
    let error = error_line(&verify(&ws, &ws.public));
    assert!(error.contains("does not match its files"), "{error}");
}

#[test]
fn verify_with_the_wrong_public_key_fails() {
    let ws = workspace();
    sign(&ws);
    let error = error_line(&verify(&ws, &sample_dir().join("dev-key.pub")));
    let signer = catalog::key_id(&catalog_tool::read_public_key(&ws.public).unwrap());
    assert!(
        error.contains(&format!(
            "the catalog is signed by key {signer}, which this machine does not trust"
        )),
        "{error}"
    );
    let error = error_line(&verify(&ws, &ws.key));
    assert!(error.contains("it is a secret key file"), "{error}");
}

#[test]
fn verify_an_unsigned_catalog_says_how_to_sign_it() {
    let ws = workspace();
    let error = error_line(&verify(&ws, &ws.public));
    assert_eq!(
        error,
        format!(
            "error: catalog {0} is not signed: run `sprijin-console catalog sign {0} --key FILE`",
            ws.dir.display()
        )
    );
}

#[test]
fn sign_refuses_a_broken_script_naming_it() {
    let ws = workspace();
    fs::write(
        ws.dir.join("broken.toml"),
        "id = \"broken\"\ntitle = \"Broken\"\nshell = \"rm -rf /\"\n",
    )
    .unwrap();
    let error = error_line(&run(&[&"catalog", &"sign", &ws.dir, &"--key", &ws.key]));
    assert!(error.contains("\"broken.toml\""), "{error}");
    assert!(error.contains("unknown field `shell`"), "{error}");
    assert!(!ws.dir.join("catalog.sig").exists());
}

#[test]
fn sign_refuses_self_service_on_a_risky_or_free_text_script_naming_it() {
    let ws = workspace();
    // stop-process is high risk; journal-vacuum takes a typed size.
    for (file, from, to, reason) in [
        (
            "stop-process.toml",
            "risk = \"high\"",
            "risk = \"high\"\nself_service = true",
            "self_service is only for low-risk scripts, and this one is high risk",
        ),
        (
            "journal-vacuum.toml",
            "risk = \"medium\"",
            "risk = \"low\"\nself_service = true",
            "self_service needs every parameter bound, and parameter size is free text",
        ),
    ] {
        let path = ws.dir.join(file);
        let original = fs::read_to_string(&path).unwrap();
        assert!(original.contains(from), "{file}");
        fs::write(&path, original.replacen(from, to, 1)).unwrap();
        let error = error_line(&run(&[&"catalog", &"sign", &ws.dir, &"--key", &ws.key]));
        assert!(error.contains(&format!("\"{file}\"")), "{error}");
        assert!(error.contains(reason), "{error}");
        assert!(!ws.dir.join("catalog.sig").exists());
        fs::write(&path, original).unwrap();
    }
}

#[test]
fn self_service_added_after_signing_is_refused() {
    let ws = workspace();
    sign(&ws);
    let path = ws.dir.join("echo-test.toml");
    let edited = fs::read_to_string(&path).unwrap().replacen(
        "risk = \"low\"",
        "risk = \"low\"\nself_service = true",
        1,
    );
    fs::write(&path, edited).unwrap();
    let error = error_line(&verify(&ws, &ws.public));
    assert!(error.contains("does not match its files"), "{error}");
}

#[test]
fn sign_and_verify_show_the_key_signing_time_and_expiry() {
    let ws = workspace();
    let signer = catalog::key_id(&catalog_tool::read_public_key(&ws.public).unwrap());
    let line = stdout(&run(&[
        &"catalog",
        &"sign",
        &ws.dir,
        &"--key",
        &ws.key,
        &"--expires",
        &"2099-06-30T12:00:00+02:00",
    ]));
    assert!(
        line.contains(&format!("with key {signer} on "))
            && line.contains(", expires 2099-06-30T10:00:00Z"),
        "{line}"
    );
    let sig = fs::read_to_string(ws.dir.join("catalog.sig")).unwrap();
    assert!(sig.starts_with(&format!(
        "sprijin-catalog-signature v2\nkey {signer}\nsigned "
    )));
    assert!(sig.contains("\nexpires 2099-06-30T10:00:00Z\n"), "{sig}");
    let verified = stdout(&verify(&ws, &ws.public));
    assert!(
        verified.contains(&format!("signed by key {signer} on "))
            && verified.contains(", expires 2099-06-30T10:00:00Z"),
        "{verified}"
    );

    // Without --expires, the signature is good for 90 days.
    sign(&ws);
    let summary = catalog_tool::verify(&ws.dir, &ws.public, SystemTime::now()).unwrap();
    let validity = summary
        .expires_at
        .duration_since(summary.signed_at)
        .unwrap();
    assert_eq!(validity, Duration::from_secs(90 * 24 * 60 * 60));
}

#[test]
fn a_catalog_signed_the_old_way_is_refused_with_the_way_out() {
    // The sample as it was signed by the first format: one line with the
    // signature alone, no key id and no dates.
    const FIRST_FORMAT: &str = "sprijin-catalog-signature ed25519 5b8eb5aa10c9b404ce4361b137166ca91650926fc4aa04a5c0450eedc46137bd4443195741d1e3b861695686c774b917f7cef5fe635134f4f7726af368fcc009\n";
    let ws = workspace();
    fs::write(ws.dir.join("catalog.sig"), FIRST_FORMAT).unwrap();
    let dev_key = sample_dir().join("dev-key.pub");
    let error = error_line(&verify(&ws, &dev_key));
    assert!(
        error.contains(
            "the catalog signature is in the format of an older version, which has no signing time or expiry"
        ) && error.ends_with(
            "sign the catalog again with this version: `sprijin-console catalog sign DIR --key FILE`"
        ),
        "{error}"
    );
    // It cannot be sent to an agent either.
    let message = catalog_tool::load(&ws.dir).unwrap_err().to_string();
    assert!(
        message.contains("in the format of an older version"),
        "{message}"
    );
    sign(&ws);
    stdout(&verify(&ws, &ws.public));
}

#[test]
fn sign_refuses_a_pattern_that_escapes_its_anchors() {
    let ws = workspace();
    let path = ws.dir.join("echo-test.toml");
    let text = fs::read_to_string(&path).unwrap();
    let escaping = text.replace("'^[a-z]{1,16}$'", r"'^a)|(?:b$'");
    assert_ne!(
        escaping, text,
        "echo-test's pattern changed; update this test"
    );
    fs::write(&path, escaping).unwrap();
    let error = error_line(&run(&[&"catalog", &"sign", &ws.dir, &"--key", &ws.key]));
    assert!(
        error.contains(r#"pattern "^a)|(?:b$" does not compile on its own"#),
        "{error}"
    );
    assert!(!ws.dir.join("catalog.sig").exists());
}
