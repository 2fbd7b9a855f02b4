//! The direct path: once the end-to-end connection is up through the
//! relay, agent and console may move it to a path between the two of them.
//!
//! 1. On a bidirectional stream of the end-to-end connection (so the relay
//!    can neither read nor inject), the console asks; the agent answers
//!    with its candidate addresses, or that it does not allow a direct
//!    path; only then does the console send its own. A side that does not
//!    allow it never sends an address and never learns one.
//! 2. Both send authenticated probes ([`crate::path::probe`]) from the
//!    session's own socket to each of the other's candidates, which opens
//!    their NATs' mappings for the other side. An authenticated probe or
//!    answer proves its source address the other side's.
//! 3. On the first answer, the console's socket sends the connection's
//!    datagrams to that address instead of the relay; the agent's QUIC
//!    sees an ordinary client migration (path validation, fresh congestion
//!    state). One connection: no stream reopened, nothing lost or repeated.
//! 4. The console probes the direct address every [`CHECK_EVERY`]; when
//!    nothing answered for [`FALLBACK_AFTER`], its datagrams go to the
//!    relay again (its ticket is still good), and the agent migrates back.
//!    After [`RETRY_AFTER`] both punch again.
//!
//! Each side reports every change as a [`PathChange`].

mod state;

pub(crate) use state::{DirectState, Inbound};

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn::{Connection, RecvStream};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::framing::{FrameError, FrameReader, FrameWriter};
use crate::path::probe::ProbeKey;

/// How long one attempt sends probes before it gives up.
pub const PUNCH_FOR: Duration = Duration::from_secs(5);
/// How often, during an attempt, each candidate gets a probe.
const PUNCH_EVERY: Duration = Duration::from_millis(100);
/// How often the console probes the direct path while it is in use.
pub const CHECK_EVERY: Duration = Duration::from_millis(500);
/// How long the direct path may go unanswered before the session goes
/// back to the relay.
pub const FALLBACK_AFTER: Duration = Duration::from_millis(1500);
/// How long after a failed attempt, or a fallback, the next one starts.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How often the agent looks at where its connection's datagrams come from.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// The most candidates either side sends or takes.
const MAX_CANDIDATES: usize = 8;

/// Whether a side may take part in a direct path (`--direct`, config key
/// `direct`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Move to a direct path when one answers.
    #[default]
    Allow,
    /// Stay on the relay: neither side learns the other's address.
    Never,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Allow => "allow",
            Policy::Never => "never",
        })
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        match s {
            "allow" => Ok(Policy::Allow),
            "never" => Ok(Policy::Never),
            other => Err(format!(
                "direct must be \"allow\" or \"never\", not {other:?}"
            )),
        }
    }
}

/// A change of the session's path, as one side saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathChange {
    /// The other side's address on the direct path; `None`: through the
    /// relay.
    pub direct: Option<SocketAddr>,
    /// Why, in a few words.
    pub reason: String,
}

impl PathChange {
    /// "direct" or "relayed".
    pub fn kind(&self) -> &'static str {
        if self.direct.is_some() {
            "direct"
        } else {
            "relayed"
        }
    }
}

impl fmt::Display for PathChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direct {
            Some(peer) => write!(f, "the session is direct, to {peer}: {}", self.reason),
            None => write!(f, "the session goes through the relay: {}", self.reason),
        }
    }
}

/// What the two sides say on the path stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum PathMsg {
    /// The console allows a direct path and asks for the agent's addresses.
    Ask,
    /// The agent does not allow one.
    Never,
    Candidates(Vec<SocketAddr>),
    /// The console starts another attempt.
    Punch,
    /// The console moved its datagrams (to the direct path, or back).
    Moved {
        direct: bool,
    },
}

/// One side's handle on its path's direct state.
#[derive(Clone)]
pub struct Direct {
    state: Arc<DirectState>,
    relay: SocketAddr,
}

impl fmt::Debug for Direct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Direct")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectError {
    #[error("the session's connection ended")]
    Connection(#[from] quinn::ConnectionError),
    #[error("the other side's path message is not readable: {0}")]
    Frame(#[from] FrameError),
    #[error("the other side broke the path exchange: {0}")]
    Protocol(&'static str),
    #[error("the session's connection has no keys for probes")]
    NoKey,
}

impl Direct {
    pub(crate) fn new(state: Arc<DirectState>, relay: SocketAddr) -> Direct {
        Direct { state, relay }
    }

    /// The console's side: asks the agent, punches, moves the connection
    /// and checks the direct path until the connection ends. Reports each
    /// change on `changes`.
    pub async fn console(
        self,
        connection: Connection,
        changes: mpsc::Sender<PathChange>,
    ) -> Result<(), DirectError> {
        let (send, recv) = connection.open_bi().await?;
        let mut writer = FrameWriter::new(send);
        let mut reader = FrameReader::new(recv);
        writer.write_msg(&PathMsg::Ask).await?;
        let theirs = match reader.expect_msg::<PathMsg>().await? {
            PathMsg::Never => {
                let _ = changes
                    .send(PathChange {
                        direct: None,
                        reason: "the person's side does not allow a direct path".into(),
                    })
                    .await;
                return Ok(());
            }
            PathMsg::Candidates(c) => self.usable(c),
            _ => return Err(DirectError::Protocol("expected the agent's candidates")),
        };
        self.state
            .enable(ProbeKey::of(&connection).ok_or(DirectError::NoKey)?);
        writer
            .write_msg(&PathMsg::Candidates(self.candidates()))
            .await?;
        // The agent's later messages are not needed; reading them keeps
        // its stream from filling.
        tokio::spawn(async move { while let Ok(Some(_)) = reader.read_msg::<PathMsg>().await {} });
        let mut first = true;
        loop {
            if !first {
                writer.write_msg(&PathMsg::Punch).await?;
            }
            first = false;
            let Some(to) = self.punch(&theirs, &connection).await else {
                if wait_or_closed(&connection, RETRY_AFTER).await {
                    return Ok(());
                }
                continue;
            };
            let generation = self.state.generation();
            self.state.set_route(Some(to));
            // New data on the connection carries the move at once.
            writer.write_msg(&PathMsg::Moved { direct: true }).await?;
            report(&changes, Some(to), "a direct path answered").await;
            let reason = self.check(to, generation, &connection).await;
            self.state.set_route(None);
            if connection.close_reason().is_some() {
                return Ok(());
            }
            writer.write_msg(&PathMsg::Moved { direct: false }).await?;
            report(&changes, None, reason).await;
            if wait_or_closed(&connection, RETRY_AFTER).await {
                return Ok(());
            }
        }
    }

    /// The agent's side: answers the console's ask as `policy` says,
    /// punches with it, and reports where the connection's datagrams come
    /// from as that changes, until the connection ends.
    pub async fn agent(
        self,
        connection: Connection,
        policy: Policy,
        changes: mpsc::Sender<PathChange>,
    ) -> Result<(), DirectError> {
        let (send, recv) = connection.accept_bi().await?;
        let mut writer = FrameWriter::new(send);
        let mut reader = FrameReader::new(recv);
        if reader.expect_msg::<PathMsg>().await? != PathMsg::Ask {
            return Err(DirectError::Protocol("expected the console's ask"));
        }
        if policy == Policy::Never {
            writer.write_msg(&PathMsg::Never).await?;
            let _ = writer.get_mut().finish();
            return Ok(());
        }
        self.state
            .enable(ProbeKey::of(&connection).ok_or(DirectError::NoKey)?);
        writer
            .write_msg(&PathMsg::Candidates(self.candidates()))
            .await?;
        let theirs = match reader.expect_msg::<PathMsg>().await? {
            PathMsg::Candidates(c) => self.usable(c),
            _ => return Err(DirectError::Protocol("expected the console's candidates")),
        };
        let watch = tokio::spawn(watch_remote(connection.clone(), self.relay, changes));
        self.agent_punches(theirs, &connection, reader).await;
        // Where the datagrams come from is watched until the connection
        // ends, whatever became of the path stream. The writer lives as
        // long: finishing it would end the console's reading.
        let _ = watch.await;
        drop(writer);
        Ok(())
    }

    /// Punches at once and again at each of the console's new attempts,
    /// until the path stream ends. An attempt runs on its own task: reading
    /// the stream is never cut short in the middle of a frame.
    async fn agent_punches(
        &self,
        theirs: Vec<SocketAddr>,
        connection: &Connection,
        mut reader: FrameReader<RecvStream>,
    ) {
        let attempt = || {
            let (me, theirs, connection) = (self.clone(), theirs.clone(), connection.clone());
            tokio::spawn(async move {
                me.punch(&theirs, &connection).await;
            })
        };
        let mut current = attempt();
        while let Ok(Some(msg)) = reader.read_msg::<PathMsg>().await {
            if msg == PathMsg::Punch {
                current.abort();
                current = attempt();
            }
        }
        current.abort();
    }

    /// This side's candidates: its interface addresses of the socket's
    /// family with the socket's port, and where the relay sees it.
    fn candidates(&self) -> Vec<SocketAddr> {
        let Some(local) = self.state.socket().and_then(|s| s.local_addr_now()) else {
            return Vec::new();
        };
        let mut out: Vec<SocketAddr> = Vec::new();
        if let Some(seen) = self.state.reflexive() {
            out.push(seen);
        }
        if !local.ip().is_unspecified() {
            out.push(local);
        } else if let Ok(interfaces) = if_addrs::get_if_addrs() {
            for i in interfaces {
                let ip = i.ip();
                if ip.is_ipv4() == local.is_ipv4() && worth_trying(ip) {
                    out.push(SocketAddr::new(ip, local.port()));
                }
            }
        }
        out.dedup();
        out.truncate(MAX_CANDIDATES);
        out
    }

    /// The other side's candidates this side will probe.
    fn usable(&self, mut theirs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        let family = self
            .state
            .socket()
            .and_then(|s| s.local_addr_now())
            .map(|a| a.is_ipv4());
        theirs.truncate(MAX_CANDIDATES);
        theirs.retain(|a| {
            a.port() != 0
                && *a != self.relay
                && !a.ip().is_unspecified()
                && !a.ip().is_multicast()
                && family.is_none_or(|v4| v4 == a.is_ipv4())
                && a.ip() != IpAddr::from([255, 255, 255, 255])
        });
        theirs
    }

    /// Probes each of `theirs` until one answers or [`PUNCH_FOR`] passed;
    /// the address that answered.
    async fn punch(&self, theirs: &[SocketAddr], connection: &Connection) -> Option<SocketAddr> {
        if theirs.is_empty() {
            return None;
        }
        let started = Instant::now();
        let mut tick = tokio::time::interval(PUNCH_EVERY);
        while started.elapsed() < PUNCH_FOR && connection.close_reason().is_none() {
            tick.tick().await;
            if let Some(to) = self.state.first_answer_since(started) {
                return Some(to);
            }
            for to in theirs {
                self.send_probe(*to);
            }
        }
        None
    }

    /// Probes `to` while it answers; why the session leaves it.
    async fn check(
        &self,
        to: SocketAddr,
        generation: u64,
        connection: &Connection,
    ) -> &'static str {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        let mut last = Instant::now();
        loop {
            tick.tick().await;
            if connection.close_reason().is_some() {
                return "the session ended";
            }
            if self.state.generation() != generation {
                return "this side's network changed";
            }
            if let Some(at) = self.state.answered(to) {
                last = last.max(at);
            }
            if last.elapsed() >= FALLBACK_AFTER {
                return "the direct path stopped answering";
            }
            self.send_probe(to);
        }
    }

    fn send_probe(&self, to: SocketAddr) {
        let (Some(socket), Some(probe)) = (self.state.socket(), self.state.probe(to)) else {
            return;
        };
        socket.send_to(to, &probe);
    }
}

/// An address worth offering: not loopback, link-local or unspecified.
fn worth_trying(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => {
            !(v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Reports each change of the agent's connection's remote address: the
/// relay's, or the console's direct one.
async fn watch_remote(
    connection: Connection,
    relay: SocketAddr,
    changes: mpsc::Sender<PathChange>,
) {
    let mut last = connection.remote_address();
    let mut tick = tokio::time::interval(WATCH_EVERY);
    while connection.close_reason().is_none() {
        tick.tick().await;
        let now = connection.remote_address();
        if now == last {
            continue;
        }
        last = now;
        if now == relay {
            report(
                &changes,
                None,
                "the technician's side went back to the relay",
            )
            .await;
        } else {
            report(
                &changes,
                Some(now),
                "the technician's side moved to a direct path",
            )
            .await;
        }
    }
}

async fn report(changes: &mpsc::Sender<PathChange>, direct: Option<SocketAddr>, reason: &str) {
    let _ = changes
        .send(PathChange {
            direct,
            reason: reason.to_string(),
        })
        .await;
}

/// Waits `d`; true when the connection closed meanwhile.
async fn wait_or_closed(connection: &Connection, d: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => connection.close_reason().is_some(),
        _ = connection.closed() => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::wire::Side;

    #[test]
    fn the_policy_reads_allow_and_never_and_names_anything_else() {
        assert_eq!("allow".parse::<Policy>(), Ok(Policy::Allow));
        assert_eq!("never".parse::<Policy>(), Ok(Policy::Never));
        let err = "sometimes".parse::<Policy>().unwrap_err();
        assert!(err.contains("\"sometimes\""), "{err}");
        assert_eq!(Policy::default(), Policy::Allow);
        assert_eq!(Policy::Never.to_string(), "never");
    }

    #[test]
    fn candidates_that_cannot_be_the_other_side_are_not_probed() {
        let relay: SocketAddr = "198.51.100.1:7420".parse().unwrap();
        let direct = Direct::new(DirectState::new(Side::Console), relay);
        let offered: Vec<SocketAddr> = [
            "203.0.113.5:4000",
            "198.51.100.1:7420",
            "0.0.0.0:4000",
            "203.0.113.5:0",
            "224.0.0.1:4000",
            "255.255.255.255:4000",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        assert_eq!(
            direct.usable(offered),
            vec!["203.0.113.5:4000".parse::<SocketAddr>().unwrap()]
        );
        let many: Vec<SocketAddr> = (1..=20)
            .map(|p| SocketAddr::from(([203, 0, 113, 5], p)))
            .collect();
        assert_eq!(direct.usable(many).len(), MAX_CANDIDATES);
    }

    #[test]
    fn a_change_says_where_and_why() {
        let to: SocketAddr = "203.0.113.5:4000".parse().unwrap();
        let direct = PathChange {
            direct: Some(to),
            reason: "a direct path answered".into(),
        };
        assert_eq!(direct.kind(), "direct");
        assert_eq!(
            direct.to_string(),
            "the session is direct, to 203.0.113.5:4000: a direct path answered"
        );
        let relayed = PathChange {
            direct: None,
            reason: "the direct path stopped answering".into(),
        };
        assert_eq!(relayed.kind(), "relayed");
        assert!(
            relayed
                .to_string()
                .starts_with("the session goes through the relay")
        );
    }
}
