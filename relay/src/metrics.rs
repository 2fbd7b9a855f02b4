//! Prometheus metrics: what the relay did and what it refused, and a small
//! endpoint that serves them as text on `--metrics ADDR`.
//!
//! The endpoint is bounded like the relay itself: a fixed number of
//! connections at once (more are answered 503 and closed at once), a
//! deadline for each, and a pause after a failed accept instead of a spin.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sprijin_proto::message::control::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::warn;

use crate::rendezvous::TableMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

/// A bound that refused something.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Limit {
    /// A control message over the control frame limit.
    ControlFrame,
    /// A connection from an address already holding its share.
    ConnectionsPerAddress,
    /// A nameplate open over the per-address rate.
    OpensPerMinute,
    /// A claim over the per-address rate.
    ClaimsPerMinute,
    /// A peer that broke the stream or window limits and was closed.
    Streams,
    /// A metrics request while the endpoint was at its connection cap.
    MetricsConnections,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub limit: Limit,
}

/// How a paired session (or a claim that never became one) ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Outcome {
    /// Both sides ended it normally.
    Completed,
    /// The end-to-end set-up proved the code wrong (the console says so in
    /// its close code; the relay cannot read the session).
    WrongCode,
    /// The end-to-end set-up did not finish within the handshake time.
    Idle,
    /// The claim was refused before pairing (unknown, used or expired code,
    /// no token, a limit).
    Refused,
    /// A side went away without ending it: a broken network, a killed program.
    Lost,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: Outcome,
}

/// Why the forwarder dropped a datagram; its label is the snake-case name
/// (`third_party`), as the README lists them.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Dropped {
    /// A ticket or presentation this relay did not make, or a datagram
    /// that starts like ours but is not well formed.
    Forged,
    /// The ticket has expired.
    Expired,
    /// A session or side the relay does not know (yet): it asked the
    /// sender to present its ticket.
    Unknown,
    /// Over the session's `--session-rate`.
    OverRate,
    /// A session's header, or an old presentation, from an address that
    /// is not that side's.
    ThirdParty,
    /// The other side has not presented yet and the few held datagrams
    /// are already waiting.
    PeerUnknown,
    /// Larger than any datagram the path uses.
    Oversize,
    /// A new session while the relay already forwards `--max-sessions`.
    Full,
}

impl Dropped {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Dropped::Forged => "forged",
            Dropped::Expired => "expired",
            Dropped::Unknown => "unknown",
            Dropped::OverRate => "over_rate",
            Dropped::ThirdParty => "third_party",
            Dropped::PeerUnknown => "peer_unknown",
            Dropped::Oversize => "oversize",
            Dropped::Full => "full",
        }
    }
}

impl prometheus_client::encoding::EncodeLabelValue for Dropped {
    fn encode(
        &self,
        encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.label())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DroppedLabel {
    pub reason: Dropped,
}

/// Upper bounds, in seconds, of the set-up time buckets.
const SETUP_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

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
    pub datagrams_forwarded: Counter,
    pub datagrams_dropped: Family<DroppedLabel, Counter>,
    pub forwarding_entries: Gauge,
    pub forwarding_held_bytes: Gauge,
    pub refusals: Family<Reason, Counter>,
    pub limited: Family<LimitLabel, Counter>,
    pub claims_refused: Family<Reason, Counter>,
    pub sessions_ended: Family<OutcomeLabel, Counter>,
    pub setup_seconds: Histogram,
    pub table: TableMetrics,
    pub metrics_accept_errors: Counter,
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
            datagrams_forwarded: Counter::default(),
            datagrams_dropped: Family::default(),
            forwarding_entries: Gauge::default(),
            forwarding_held_bytes: Gauge::default(),
            refusals: Family::default(),
            limited: Family::default(),
            claims_refused: Family::default(),
            sessions_ended: Family::default(),
            setup_seconds: Histogram::new(SETUP_BUCKETS),
            table: TableMetrics::default(),
            metrics_accept_errors: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("connections", "Connections accepted", m.connections.clone());
        registry.register(
            "connections_open",
            "Connections open now (an agent waiting apart holds none)",
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
            "Sessions paired now",
            m.sessions_active.clone(),
        );
        registry.register(
            "bytes_forwarded",
            "Session bytes forwarded (datagram payloads), both directions",
            m.bytes_forwarded.clone(),
        );
        registry.register(
            "datagrams_forwarded",
            "Session datagrams forwarded, both directions",
            m.datagrams_forwarded.clone(),
        );
        registry.register(
            "datagrams_dropped",
            "Datagrams the forwarder dropped, by reason",
            m.datagrams_dropped.clone(),
        );
        registry.register(
            "forwarding_entries",
            "Sessions the forwarder knows now",
            m.forwarding_entries.clone(),
        );
        registry.register(
            "forwarding_held_bytes",
            "Bytes held for a session side that has not proven its address yet",
            m.forwarding_held_bytes.clone(),
        );
        registry.register(
            "refusals",
            "Requests refused, by reason",
            m.refusals.clone(),
        );
        registry.register(
            "limited",
            "Requests and connections refused by a limit, by limit",
            m.limited.clone(),
        );
        registry.register(
            "claims_refused",
            "Console claims refused before pairing, by reason",
            m.claims_refused.clone(),
        );
        registry.register(
            "sessions_ended",
            "Sessions and claims ended, by how they ended",
            m.sessions_ended.clone(),
        );
        registry.register(
            "setup_seconds",
            "Seconds from a console's claim until the end-to-end session first carried the agent's answer",
            m.setup_seconds.clone(),
        );
        registry.register(
            "nameplates_remembered",
            "Used or expired nameplates remembered to answer late claims",
            m.table.remembered.clone(),
        );
        registry.register(
            "nameplates_forgotten_early",
            "Used or expired nameplates forgotten early because the table was full",
            m.table.forgotten_early.clone(),
        );
        registry.register(
            "metrics_accept_errors",
            "Failed accepts on the metrics endpoint",
            m.metrics_accept_errors.clone(),
        );
        // Every outcome shows from the start, at 0, so a rate can be taken.
        for outcome in [
            Outcome::Completed,
            Outcome::WrongCode,
            Outcome::Idle,
            Outcome::Refused,
            Outcome::Lost,
        ] {
            let _ = m.sessions_ended.get_or_create(&OutcomeLabel { outcome });
        }
        for reason in [
            Dropped::Forged,
            Dropped::Expired,
            Dropped::Unknown,
            Dropped::OverRate,
            Dropped::ThirdParty,
            Dropped::PeerUnknown,
        ] {
            let _ = m.datagrams_dropped.get_or_create(&DroppedLabel { reason });
        }
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

    /// Counts a console's claim refused before pairing, and its end.
    pub fn claim_refused(&self, code: ErrorCode) {
        self.claims_refused
            .get_or_create(&Reason {
                reason: format!("{code:?}"),
            })
            .inc();
        self.ended(Outcome::Refused);
    }

    /// Counts a session's end.
    pub fn ended(&self, outcome: Outcome) {
        self.sessions_ended
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// How many sessions ended this way so far.
    pub fn ended_count(&self, outcome: Outcome) -> u64 {
        self.sessions_ended
            .get_or_create(&OutcomeLabel { outcome })
            .get()
    }

    /// Counts a datagram the forwarder dropped.
    pub fn dropped(&self, reason: Dropped) {
        self.datagrams_dropped
            .get_or_create(&DroppedLabel { reason })
            .inc();
    }

    /// How many datagrams were dropped for this reason so far.
    pub fn dropped_count(&self, reason: Dropped) -> u64 {
        self.datagrams_dropped
            .get_or_create(&DroppedLabel { reason })
            .get()
    }

    /// Counts something a limit refused.
    pub fn limited(&self, limit: Limit) {
        self.limited.get_or_create(&LimitLabel { limit }).inc();
    }

    /// How many times this limit refused so far.
    pub fn limited_count(&self, limit: Limit) -> u64 {
        self.limited.get_or_create(&LimitLabel { limit }).get()
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// How long a metrics client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one metrics connection may last in all, so a client that stops
/// reading cannot hold a place either.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The first pause after a failed accept (out of file descriptors, for
/// instance); it doubles with each failure in a row, up to the longest.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

const NOT_FOUND: &str = "not found: this address serves /metrics and /healthz\n";

/// Serves over plain HTTP, at most `max_connections` at once: `/metrics`
/// (the text exposition), `/healthz` (`ok`, for load balancers) and 404
/// for any other path.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, max_connections: usize) {
    let places = Arc::new(Semaphore::new(max_connections));
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        let socket = match listener.accept().await {
            Ok((socket, _)) => {
                backoff = ACCEPT_BACKOFF;
                socket
            }
            Err(e) => {
                metrics.metrics_accept_errors.inc();
                warn!("metrics endpoint cannot accept a connection: {e}; pausing {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Ok(place) = places.clone().try_acquire_owned() else {
            metrics.limited(Limit::MetricsConnections);
            // Best effort and never waiting: the socket's buffer is empty,
            // so the short answer fits; then the socket is closed.
            let _ = socket.try_write(BUSY);
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, answer(socket, &metrics)).await;
            drop(place);
        });
    }
}

async fn answer(mut socket: TcpStream, metrics: &Metrics) {
    // Only the request line matters, and it fits the first read; the rest
    // is read so the client is not reset before it sees the answer.
    let mut buf = [0u8; 1024];
    let n = match tokio::time::timeout(READ_TIMEOUT, socket.read(&mut buf)).await {
        Ok(Ok(n)) => n,
        _ => 0,
    };
    let (status, content_type, body) = match request_path(&buf[..n]) {
        Some("/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        Some("/healthz") => ("200 OK", "text/plain; charset=utf-8", "ok\n".to_string()),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            NOT_FOUND.to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// The path of an HTTP request line (`GET /metrics?x HTTP/1.1`), without
/// its query.
fn request_path(request: &[u8]) -> Option<&str> {
    let line = request.split(|b| *b == b'\r' || *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    let _method = words.next()?;
    let target = words.next()?;
    target.split('?').next()
}

/// Binds the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_path_is_read_from_the_request_line() {
        assert_eq!(
            request_path(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n"),
            Some("/metrics")
        );
        assert_eq!(
            request_path(b"GET /healthz?probe=1 HTTP/1.0\r\n"),
            Some("/healthz")
        );
        assert_eq!(request_path(b""), None);
        assert_eq!(request_path(b"\xff\xfe"), None);
    }

    #[test]
    fn drop_reasons_are_labelled_as_the_readme_lists_them() {
        let m = Metrics::default();
        m.dropped(Dropped::ThirdParty);
        m.dropped(Dropped::PeerUnknown);
        m.dropped(Dropped::OverRate);
        let text = m.render();
        for label in ["third_party", "peer_unknown", "over_rate"] {
            assert!(
                text.contains(&format!("reason=\"{label}\"")),
                "{label} missing from:\n{text}"
            );
        }
        assert!(!text.contains("ThirdParty"), "{text}");
    }
}
