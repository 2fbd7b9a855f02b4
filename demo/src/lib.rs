//! The whole product on one machine, for a newcomer. It starts a real relay
//! on loopback, a real agent that shares this machine (its person's answers
//! typed automatically), and a console that connects with the code, looks at
//! the machine, runs a script from the signed sample catalog and writes the
//! session report. When a display is there (and standard input is a
//! terminal or absent), the agent's window opens and the person's answers
//! are clicks in it instead.
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
use sprijin_agent::face::Face;
use sprijin_agent::face::choose::{FaceChoice, Surroundings};
use sprijin_agent::face::strings::Lang;
use sprijin_agent::face::window::{self, WindowError};
use sprijin_proto::path::direct::Policy;
use sprijin_relay::{Relay, RelayConfig};
use tokio::sync::{mpsc, oneshot};

use sprijin_console::connect::{ConnectArgs, connect};
use sprijin_console::driver::DriverError;
use sprijin_console::session::ConnectOptions;

/// The sample catalog and its development key, shipped in the repository.
fn sample_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog")
}

/// Runs the demo to its end, in the agent's window when a display is
/// there (this must then be the main thread), else at this terminal.
/// `Ok(true)` when every step worked.
pub fn run(json: bool) -> Result<bool, DemoError> {
    if FaceChoice::Auto.wants_window(&Surroundings::here()) {
        let served = window::serve(
            Lang::from_env(),
            AgentConfig::DEFAULT_CONSENT_TIMEOUT,
            None,
            move |face, ended| {
                let face: Arc<dyn Face> = face;
                let result = on_runtime(demo(json, Some((face, ended))));
                println!("demo: close the window to finish");
                result
            },
            |result| result.as_ref().err().map(|e| e.to_string()),
        );
        match served {
            Ok(result) => return result,
            Err(e @ WindowError::Open(_)) => eprintln!("{e}; the demo answers for the person"),
            Err(e) => return Err(DemoError::Setup(e.to_string())),
        }
    }
    on_runtime(demo(json, None))
}

fn on_runtime(demo: impl Future<Output = Result<bool, DemoError>>) -> Result<bool, DemoError> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| DemoError::Setup(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(demo);
    // The session's reader of standard input cannot be interrupted, so the
    // runtime is shut down without waiting for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// Runs the demo; `Ok(true)` when every step worked. With `window` (its
/// face and its End channel) the person answers in the agent's window;
/// without, the answers are typed automatically.
pub async fn demo(
    json: bool,
    window: Option<(Arc<dyn Face>, oneshot::Receiver<()>)>,
) -> Result<bool, DemoError> {
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
        relays: vec![sprijin_proto::fleet::RelayAddr::new(relay_addr.to_string())],
        relay_fingerprint: Some(fingerprint),
        trusted_keys,
        data_dir: work.path().join("agent"),
        consent_timeout: AgentConfig::DEFAULT_CONSENT_TIMEOUT,
        output_cap: sprijin_agent::script::runner::DEFAULT_OUTPUT_CAP,
        sample_interval: AgentConfig::DEFAULT_SAMPLE_INTERVAL,
        fetch_cap: AgentConfig::DEFAULT_FETCH_CAP,
        session_idle_timeout: AgentConfig::DEFAULT_SESSION_IDLE_TIMEOUT,
        direct: Policy::Allow,
    };
    let (face, ended): (Arc<dyn Face>, _) = match window {
        Some((face, ended)) => {
            println!("demo: starting the agent; answer its questions in its window (Allow, twice)");
            (face, Some(ended))
        }
        None => {
            // The person's answers: allow the session, approve the one run.
            let (answers, answer_rx) = mpsc::channel(4);
            for _ in 0..2 {
                let _ = answers.send("y".to_string()).await;
            }
            println!("demo: starting the agent; the person's answers are typed automatically");
            let consent = Consent::from_channel(answer_rx, Duration::from_secs(30));
            (Arc::new(consent), None)
        }
    };
    let (code_tx, code_rx) = oneshot::channel();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(sprijin_agent::session::share(
        config,
        face,
        async move {
            match ended {
                Some(ended) => {
                    tokio::select! {
                        _ = agent_stopped => {}
                        _ = ended => {}
                    }
                }
                None => {
                    let _ = agent_stopped.await;
                }
            }
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
            direct: Policy::Allow,
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
