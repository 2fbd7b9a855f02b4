//! Prometheus metrics: what the relay did and what it refused, and a small
//! endpoint that serves them as text on `--metrics ADDR`.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sprijin_proto::message::control::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

/// Every counter and gauge the relay keeps.
pub struct Metrics {
    registry: Registry,
    pub connections: Counter,
    pub connections_open: Gauge,
    pub nameplates_opened: Counter,
    pub nameplates_waiting: Gauge,
    pub sessions: Counter,
    pub sessions_active: Gauge,
    pub bytes_forwarded: Counter,
    pub refusals: Family<Reason, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sprijin_relay");
        let m = Metrics {
            connections: Counter::default(),
            connections_open: Gauge::default(),
            nameplates_opened: Counter::default(),
            nameplates_waiting: Gauge::default(),
            sessions: Counter::default(),
            sessions_active: Gauge::default(),
            bytes_forwarded: Counter::default(),
            refusals: Family::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Connections accepted", m.connections.clone());
        registry.register(
            "connections_open",
            "Connections open now",
            m.connections_open.clone(),
        );
        registry.register(
            "nameplates_opened",
            "Nameplates handed out",
            m.nameplates_opened.clone(),
        );
        registry.register(
            "nameplates_waiting",
            "Nameplates waiting to be claimed",
            m.nameplates_waiting.clone(),
        );
        registry.register("sessions", "Sessions paired", m.sessions.clone());
        registry.register(
            "sessions_active",
            "Sessions being spliced now",
            m.sessions_active.clone(),
        );
        registry.register(
            "bytes_forwarded",
            "Session bytes forwarded, both directions",
            m.bytes_forwarded.clone(),
        );
        registry.register(
            "refusals",
            "Requests refused, by reason",
            m.refusals.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn refused(&self, code: ErrorCode) {
        self.refusals
            .get_or_create(&Reason {
                reason: format!("{code:?}"),
            })
            .inc();
    }

    /// How many refusals of this kind so far.
    pub fn refusal_count(&self, code: ErrorCode) -> u64 {
        self.refusals
            .get_or_create(&Reason {
                reason: format!("{code:?}"),
            })
            .get()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serves the metrics over plain HTTP: any request gets the text exposition.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            // The request itself does not matter; read what came so the
            // client is not reset before it sees the answer.
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), socket.read(&mut buf))
                .await;
            let body = metrics.render();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
