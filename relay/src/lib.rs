//! The relay: a QUIC server that pairs a waiting agent with the console that
//! claims its nameplate, then forwards the datagrams of their end-to-end
//! QUIC connection without reading them.
//!
//! Data flow: `forward` owns the one UDP socket; it forwards ticketed
//! datagrams and hands QUIC to the control endpoint. `server` accepts
//! control connections and reads each client's hello and request; agents
//! get a nameplate from `rendezvous` and wait; a console's claim takes the
//! waiting entry and both sides get their forwarding tickets (made under the
//! secret in `secret`). `limits` decides what to refuse, `metrics`
//! counts what happened. `fleet` knows this relay's id and peers and sends
//! a console that claims another relay's nameplate there; `waiting` keeps
//! the secret that lets an agent take its waiting nameplate back after a
//! lost connection or a restart.
#![forbid(unsafe_code)]

pub mod config;
pub mod fleet;
pub mod forward;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod parked;
pub mod rendezvous;
pub mod secret;
pub mod server;
pub mod tokens;
pub mod waiting;

pub use config::RelayConfig;
pub use server::{Relay, RelayError};

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

/// Runs a relay the way the `sprijin-relay` program does: prints the
/// `listening on HOST:PORT fingerprint sha256:HEX` line first, serves metrics
/// when asked, and stops cleanly on Ctrl-C or SIGTERM.
pub async fn serve(
    config: RelayConfig,
    metrics_addr: Option<SocketAddr>,
) -> Result<(), RelayError> {
    let metrics_connections = config.limits.metrics_connections;
    let shutdown = shutdown_signal();
    let relay = Relay::bind(config)?;
    let addr = relay.local_addr()?;
    // The metrics server belongs to this function and stops with the relay.
    let mut tasks = JoinSet::new();
    if let Some(maddr) = metrics_addr {
        let listener = metrics::bind(maddr).await.map_err(|e| RelayError::Bind {
            addr: maddr,
            reason: e.to_string(),
        })?;
        tasks.spawn(metrics::serve(
            listener,
            relay.metrics(),
            metrics_connections,
        ));
    }
    let line = format!("listening on {addr} fingerprint {}\n", relay.fingerprint());
    let mut stdout = tokio::io::stdout();
    // Scripts and tests wait for this line, so it must not sit in a buffer.
    let _ = stdout.write_all(line.as_bytes()).await;
    let _ = stdout.flush().await;
    relay.run(shutdown).await;
    tasks.shutdown().await;
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed
/// when this is called, not when first polled, so a signal that arrives
/// just after the `listening on` line still stops the relay cleanly.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    async move {
        let wait = |s: &mut Option<tokio::signal::unix::Signal>| {
            let s = s.take();
            async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            () = wait(&mut int) => {}
            () = wait(&mut term) => {}
        }
    }
}
