//! The benchmark harness end to end in its quick mode: the `bench` program
//! starts the real relay, agents and consoles, finishes, and writes a JSON
//! report with every figure present and sane, and says on stderr which
//! group runs as it goes. Performance targets are not
//! asserted here: test machines are too noisy for that, and debug builds
//! are far from release speed.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sprijin_tests::{Proc, bin};

/// The quick bench takes under a minute; a loaded machine gets slack.
const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn quick_bench_reports_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut cmd = Command::new(bin("bench"));
    cmd.args(["--quick", "--json"]).arg(&json);
    let mut bench = Proc::spawn(cmd);
    bench.close_stdin();
    let status = bench.wait(LIMIT).expect("the quick bench finishes");
    let printed = bench.stdout.text();
    assert!(
        status.success(),
        "bench failed:\n{printed}\n{}",
        bench.stderr.text()
    );
    assert!(
        printed.contains("metric") && printed.contains("met?"),
        "{printed}"
    );
    // It says which group runs, and when each ends.
    let said = bench.stderr.text();
    for group in ["throughput", "datapath", "concurrent", "scale"] {
        assert!(
            said.contains(&format!("bench: {group} (")) && said.contains("done in"),
            "no progress for {group}:\n{said}"
        );
    }

    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let num = |key: &str| -> f64 {
        report[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} is missing or not a number: {report:#}"))
    };
    for key in [
        "throughput_ratio",
        "relay_mib_s",
        "direct_mib_s",
        "latency_relay_ms_p99",
        "setup_ms_p50",
        "setup_ms_p99",
        "relay_rss_mib_idle",
        "idle_relay_rss_mib",
        "agent_rss_mib",
        "snapshot_ms_p50",
        "datapath_throughput_ratio",
        "relay_cpu_pct_transfer",
        "relay_cpu_s_per_gib",
        "datapath_ends_cpu_pct_relay",
        "datapath_ends_cpu_pct_direct",
        "relay_restart_gap_ms",
        "direct_throughput_ratio",
    ] {
        assert!(num(key) > 0.0, "{key} = {}", num(key));
    }
    // The relay on a core of its own needs a second core for the ends.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        assert!(num("datapath_apart_throughput_ratio") > 0.0);
    }
    for key in ["relay_idle_cpu_pct", "idle_relay_cpu_pct", "agent_cpu_pct"] {
        assert!(num(key) >= 0.0, "{key} = {}", num(key));
    }
    // The relay may add nothing measurable, but never an absurd amount.
    assert!(num("latency_added_ms_p50").abs() < 1_000.0);
    assert!(num("setup_ms_p99") >= num("setup_ms_p50"));
    assert_eq!(num("idle_agents"), 1_000.0);
    assert_eq!(num("sessions_concurrent_total"), 50.0);
    assert_eq!(
        num("sessions_concurrent_ok"),
        num("sessions_concurrent_total"),
        "every concurrent session arrives whole"
    );
    for key in ["migration_ok", "relay_restart_ok", "direct_ok"] {
        assert_eq!(report[key], Value::Bool(true), "{key}: {report:#}");
    }
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
}
