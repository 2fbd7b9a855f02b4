//! The whole product on one machine, for a newcomer. It starts a real relay
//! on loopback, a real agent that shares this machine (its person's answers
//! typed automatically), and a console that connects with the code, looks at
//! the machine, runs a script from the signed sample catalog and writes the
//! session report.
//!
//! It lives in its own package so that the technician's console does not
//! carry the agent and the relay.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sprijin_agent::config::AgentConfig;
use sprijin_agent::consent::Consent;
use sprijin_relay::{Relay, RelayConfig};
use tokio::sync::{mpsc, oneshot};

use sprijin_console::connect::{ConnectArgs, connect};
use sprijin_console::driver::DriverError;
use sprijin_console::session::ConnectOptions;

/// The sample catalog and its development key, shipped in the repository.
fn sample_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog")
}

/// Runs the demo; `Ok(true)` when every step worked.
pub async fn demo(json: bool) -> Result<bool, DemoError> {
    let work = tempfile::tempdir()
        .map_err(|e| DemoError::Setup(format!("cannot make a temporary folder: {e}")))?;
    let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let relay = Relay::bind(RelayConfig::new(listen, work.path().join("relay")))
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    let relay_addr = relay
        .local_addr()
        .map_err(|e| DemoError::Setup(e.to_string()))?;
    let fingerprint = relay.fingerprint();
    let (stop_relay, relay_stopped) = oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay.run(async move {
        let _ = relay_stopped.await;
    }));
    println!("demo: relay listening on {relay_addr} fingerprint {fingerprint}");

    let catalog = sample_catalog();
    let trusted_keys = match std::fs::read_to_string(catalog.join("dev-key.pub")) {
        Ok(text) => vec![
            sprijin_proto::catalog::parse_verifying_key(&text)
                .map_err(|e| DemoError::Setup(format!("sample catalog key: {e}")))?,
        ],
        Err(e) => {
            return Err(DemoError::Setup(format!(
                "cannot read the sample catalog key in {}: {e}",
                catalog.display()
            )));
        }
    };
    let config = AgentConfig {
        relay: relay_addr.to_string(),
        relay_fingerprint: Some(fingerprint),
        trusted_keys,
        data_dir: work.path().join("agent"),
        consent_timeout: AgentConfig::DEFAULT_CONSENT_TIMEOUT,
        output_cap: sprijin_agent::script::runner::DEFAULT_OUTPUT_CAP,
        sample_interval: AgentConfig::DEFAULT_SAMPLE_INTERVAL,
        fetch_cap: AgentConfig::DEFAULT_FETCH_CAP,
        session_idle_timeout: AgentConfig::DEFAULT_SESSION_IDLE_TIMEOUT,
    };
    // The person's answers: allow the session, approve the one run.
    let (answers, answer_rx) = mpsc::channel(4);
    for _ in 0..2 {
        let _ = answers.send("y".to_string()).await;
    }
    println!("demo: starting the agent; the person's answers are typed automatically");
    let consent = Arc::new(Consent::from_channel(answer_rx, Duration::from_secs(30)));
    let (code_tx, code_rx) = oneshot::channel();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(sprijin_agent::session::share(
        config,
        consent,
        async move {
            let _ = agent_stopped.await;
        },
        Some(code_tx),
    ));
    let code = code_rx
        .await
        .map_err(|_| DemoError::Setup("the agent stopped before it had a code".into()))?;
    println!("demo: the console connects with code {code}");
    let report = work.path().join("report.md");
    let ok = connect(ConnectArgs {
        code,
        options: ConnectOptions {
            relay: relay_addr.to_string(),
            relay_fingerprint: Some(fingerprint),
            technician: "Demo Technician".into(),
            token: None,
            session_idle_timeout: sprijin_proto::tls::SESSION_IDLE_TIMEOUT,
        },
        catalog: Some(catalog),
        credential: None,
        exec: vec![
            "diag".into(),
            "scripts".into(),
            "run echo-test word=hello".into(),
            format!("report {}", report.display()),
            "quit".into(),
        ],
        json,
        data_dir: work.path().join("console"),
    })
    .await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), agent).await;
    drop(stop_agent);
    if !json && let Ok(md) = std::fs::read_to_string(&report) {
        println!("\ndemo: the session report the technician would attach to the ticket:\n\n{md}");
    }
    let _ = stop_relay.send(());
    let _ = relay_task.await;
    println!(
        "demo: {}",
        if ok {
            "done"
        } else {
            "some steps failed (see above)"
        }
    );
    Ok(ok)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DemoError {
    #[error("demo set-up failed: {0}")]
    Setup(String),
    #[error(transparent)]
    Session(#[from] DriverError),
}
