//! Getting a code and keeping it until a technician claims it.
//!
//! [`open`] tries the configured relays in order, each with a short connect
//! timeout, and asks the first that answers for a nameplate; the person is
//! told which relays did not answer. [`wait`] then waits to be paired,
//! apart from the connection: the agent closes it and keeps its code with
//! a small MACed datagram every 20 s (see `sprijin_proto::waiting`), so a
//! relay holds thousands of waiting agents for little. When a technician
//! claims the code, the relay's answer carries the agent's side of the
//! session, sealed for it alone, and the agent opens the session at once,
//! with no new connection to the relay. If the relay stops answering or
//! no longer holds the code (it restarted), the agent reconnects by
//! itself, with backoff, until the code expires, and presents the ticket:
//! the relay makes the same nameplate wait again, so the code the person
//! read out still works. The code is printed once.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sprijin_proto::client::{ConnectError, LinkError, RelayLink};
use sprijin_proto::code::Nameplate;
use sprijin_proto::fleet::RelayAddr;
use sprijin_proto::message::control::{
    ClientMsg, ErrorCode, RelayMsg, Role, Technician, close_code,
};
use sprijin_proto::path::Ticket;
use sprijin_proto::tls::{self, Fingerprint};
use sprijin_proto::waiting::{Held, Pairing, WaitingTicket};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::config::AgentConfig;
use crate::face::{Face, Notice};

/// How long one relay has to answer before the next one is tried.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// The first and the longest pause between attempts to reconnect.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MOST: Duration = Duration::from_secs(10);

/// How often a waiting agent tells the relay it still waits.
const WAIT_EVERY: Duration = tls::KEEP_ALIVE;

/// How soon an unanswered wait is sent again.
const WAIT_AGAIN: Duration = Duration::from_secs(2);

/// How long the relay may leave waits unanswered before the agent counts
/// it lost and reconnects.
const LOST_AFTER: Duration = tls::IDLE_TIMEOUT;

/// How long after its code's expiry the agent asks the relay about it.
const EXPIRY_SLACK: Duration = Duration::from_millis(500);

/// An agent waiting at a relay with its nameplate.
pub struct Waiting {
    link: RelayLink,
    pub nameplate: Nameplate,
    pub expires_in_secs: u64,
    relay: RelayAddr,
    pin: Option<Fingerprint>,
    ticket: WaitingTicket,
    expires: Instant,
}

impl Waiting {
    /// The relay the agent waits at.
    pub fn relay(&self) -> &RelayAddr {
        &self.relay
    }
}

/// How waiting ended.
pub enum Waited {
    /// A technician claimed the code.
    Paired {
        /// The relay's address, where the session's datagrams go.
        relay: SocketAddr,
        technician: Technician,
        ticket: Ticket,
        /// The connection the agent heard of the claim on, when it came
        /// back to the relay for it; it belongs to the session's set-up.
        link: Option<Box<RelayLink>>,
    },
    /// The person stopped sharing.
    Stopped,
}

/// Asks the first relay of `config` that answers for a nameplate.
pub async fn open(config: &AgentConfig, face: &dyn Face) -> Result<Waiting, RelaysError> {
    let mut failed = Vec::new();
    for (i, relay) in config.relays.iter().enumerate() {
        let pin = relay.fingerprint.or(config.relay_fingerprint);
        let error = match open_at(relay, pin).await {
            Ok(waiting) => return Ok(waiting),
            Err(e) if e.try_next() && config.relays.len() > 1 => e,
            // One relay's own error says it best.
            Err(e) => return Err(RelaysError::Link(e.into_link())),
        };
        if let Some(next) = config.relays.get(i + 1) {
            face.show(Notice::RelayUnusable {
                relay: relay.address.to_string(),
                reason: error.to_string(),
                next: next.address.to_string(),
            });
        }
        failed.push(format!("{}: {error}", relay.address));
    }
    Err(RelaysError::NoneAnswered(failed.join("; ")))
}

/// Why one relay could not give a nameplate.
enum OpenError {
    Connect(ConnectError),
    Link(LinkError),
}

impl OpenError {
    /// Whether another relay may do better: this one did not answer, or
    /// is full. A pin that does not match is the operator's to fix.
    fn try_next(&self) -> bool {
        match self {
            OpenError::Connect(ConnectError::PinMismatch { .. }) => false,
            OpenError::Connect(_) => true,
            OpenError::Link(LinkError::Refused(frame)) => {
                matches!(frame.code, ErrorCode::Busy | ErrorCode::ShuttingDown)
            }
            OpenError::Link(LinkError::Frame(_)) => true,
            OpenError::Link(_) => false,
        }
    }

    fn into_link(self) -> LinkError {
        match self {
            OpenError::Connect(e) => LinkError::Connect(e),
            OpenError::Link(e) => e,
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Connect(e) => write!(f, "{e}"),
            OpenError::Link(e) => write!(f, "{e}"),
        }
    }
}

async fn open_at(relay: &RelayAddr, pin: Option<Fingerprint>) -> Result<Waiting, OpenError> {
    let mut link = RelayLink::connect_within(&relay.address, pin, Role::Agent, CONNECT_WITHIN)
        .await
        .map_err(OpenError::Connect)?;
    let answer = async {
        link.writer.write_msg(&ClientMsg::Open).await?;
        link.answer().await
    };
    let answer = tokio::time::timeout(CONNECT_WITHIN, answer)
        .await
        .map_err(|_| {
            OpenError::Connect(ConnectError::NoAnswer {
                relay: relay.address.clone(),
                secs: CONNECT_WITHIN.as_secs(),
            })
        })?
        .map_err(OpenError::Link)?;
    match answer {
        RelayMsg::Opened {
            nameplate,
            expires_in_secs,
            ticket,
        } => {
            // The answer tells the relay's time; snapshots from now on
            // compare this clock with it.
            if let Some(clock) =
                crate::diag::clock::compare(&relay.address, ticket.expires_at, expires_in_secs)
            {
                crate::diag::clock::record(clock);
            }
            Ok(Waiting {
                link,
                nameplate,
                expires_in_secs,
                relay: relay.clone(),
                pin,
                ticket,
                expires: Instant::now() + Duration::from_secs(expires_in_secs),
            })
        }
        other => Err(OpenError::Link(LinkError::unexpected(&other))),
    }
}

/// Waits until a technician claims the code or `stop` completes, apart
/// from the relay connection, reconnecting whenever the relay is lost.
pub async fn wait<S>(
    mut waiting: Waiting,
    stop: &mut Pin<&mut S>,
    face: &dyn Face,
) -> Result<Waited, RelaysError>
where
    S: Future<Output = ()>,
{
    let counter = Counter::default();
    loop {
        let relay_at = waiting.link.connection.remote_address();
        let socket = bind_towards(relay_at).await?;
        waiting
            .link
            .connection
            .close(close_code::PARKED.into(), b"waiting apart");
        let heard = tokio::select! {
            heard = apart(&socket, &waiting.ticket, &counter, waiting.expires) => heard,
            () = stop.as_mut() => {
                leave(&socket, &waiting.ticket, &counter).await;
                return Ok(Waited::Stopped);
            }
        };
        let lost = match heard {
            Heard::NotHere if Instant::now() >= waiting.expires => {
                return Err(RelaysError::Unclaimed {
                    secs: waiting.expires_in_secs,
                });
            }
            Heard::Claimed(pairing) => {
                return Ok(Waited::Paired {
                    relay: relay_at,
                    technician: pairing.technician,
                    ticket: pairing.ticket,
                    link: None,
                });
            }
            Heard::NotHere => "the relay no longer held the code; it may have restarted",
            Heard::Closing => "the relay is shutting down",
            Heard::Silent => "the relay stopped answering",
        };
        face.show(Notice::RelayLost {
            relay: waiting.relay.address.to_string(),
            reason: lost.to_string(),
        });
        let (link, answer) = tokio::select! {
            back = reconnect(&waiting) => back?,
            () = stop.as_mut() => {
                leave(&socket, &waiting.ticket, &counter).await;
                return Ok(Waited::Stopped);
            }
        };
        match answer {
            RelayMsg::Paired {
                technician: Some(technician),
                ticket,
            } => {
                return Ok(Waited::Paired {
                    relay: link.connection.remote_address(),
                    technician,
                    ticket,
                    link: Some(Box::new(link)),
                });
            }
            RelayMsg::Opened { nameplate, .. } if nameplate == waiting.nameplate => {
                let old = std::mem::replace(&mut waiting.link, link);
                old.endpoint.close(0u32.into(), b"reconnected");
                face.show(Notice::RelayBack {
                    relay: waiting.relay.address.to_string(),
                });
            }
            other => return Err(RelaysError::Link(LinkError::unexpected(&other))),
        }
    }
}

/// What the relay said, or did not, while the agent waited apart.
enum Heard {
    /// A technician claimed the code: the agent's side of the session.
    Claimed(Pairing),
    /// The relay does not hold the code.
    NotHere,
    /// The relay is shutting down.
    Closing,
    /// No answer for [`LOST_AFTER`].
    Silent,
}

/// The counters of waits: the clock in microseconds, larger at every call.
#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    fn next(&self) -> u64 {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let last = self.0.load(Ordering::Relaxed);
        let next = clock.max(last + 1);
        self.0.store(next, Ordering::Relaxed);
        next
    }

    fn last(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A socket that sends to and hears only the relay at `relay`.
async fn bind_towards(relay: SocketAddr) -> Result<UdpSocket, RelaysError> {
    let any: SocketAddr = if relay.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any).await.map_err(RelaysError::Socket)?;
    socket.connect(relay).await.map_err(RelaysError::Socket)?;
    Ok(socket)
}

/// Keeps the code at the relay with a wait every [`WAIT_EVERY`] (again
/// after [`WAIT_AGAIN`] while unanswered) until the relay says something
/// other than "waiting", or nothing for [`LOST_AFTER`]. Once the code
/// `expires`, a wait goes at once, so the agent hears the end then.
async fn apart(
    socket: &UdpSocket,
    ticket: &WaitingTicket,
    counter: &Counter,
    expires: Instant,
) -> Heard {
    let first = counter.last() + 1;
    let mut heard = Instant::now();
    let mut send_at = Instant::now();
    // A moment after the relay's own deadline, which came first.
    let mut expiry = Some(expires + EXPIRY_SLACK);
    let mut buf = [0u8; 512];
    loop {
        let now = Instant::now();
        if now.duration_since(heard) >= LOST_AFTER {
            return Heard::Silent;
        }
        if expiry.is_some_and(|at| now >= at) {
            expiry = None;
            send_at = now;
        }
        if now >= send_at {
            // A send refused by the system (no route for now) is a wait
            // lost, and the next one is soon.
            let _ = socket.send(&ticket.wait(counter.next(), false)).await;
            send_at = now + WAIT_AGAIN;
        }
        let received = tokio::select! {
            r = socket.recv(&mut buf) => r,
            () = tokio::time::sleep_until(
                send_at.min(heard + LOST_AFTER).min(expiry.unwrap_or(send_at)),
            ) => continue,
        };
        // An error here is the system reporting an earlier send refused
        // (the relay's port closed): the relay is silent, nothing more.
        let Ok(len) = received else { continue };
        let Some(answer) = ticket.read_answer(&buf[..len]) else {
            continue;
        };
        if answer.counter < first || answer.counter > counter.last() {
            continue;
        }
        heard = Instant::now();
        match answer.held {
            Held::Waiting => send_at = heard + WAIT_EVERY,
            Held::Claimed(pairing) => return Heard::Claimed(pairing),
            Held::NotHere => return Heard::NotHere,
            Held::Closing => return Heard::Closing,
        }
    }
}

/// Tells the relay the person stopped sharing, so the code stops working
/// at once; twice, as one datagram may be lost.
async fn leave(socket: &UdpSocket, ticket: &WaitingTicket, counter: &Counter) {
    for _ in 0..2 {
        let _ = socket.send(&ticket.wait(counter.next(), true)).await;
    }
}

/// Connects to the same relay again and presents the waiting ticket,
/// backing off between attempts, until the code expires. The relay's
/// answer: `Opened` when the code waits again, `Paired` when it was
/// claimed while the agent did not hear. Each attempt looks the relay's
/// name up, in case it came back elsewhere.
async fn reconnect(waiting: &Waiting) -> Result<(RelayLink, RelayMsg), RelaysError> {
    let mut pause = BACKOFF_FIRST;
    loop {
        let attempt = async {
            let mut link = RelayLink::connect_within(
                &waiting.relay.address,
                waiting.pin,
                Role::Agent,
                CONNECT_WITHIN,
            )
            .await?;
            link.writer
                .write_msg(&ClientMsg::Reopen {
                    ticket: waiting.ticket.clone(),
                })
                .await?;
            let answer = tokio::time::timeout(CONNECT_WITHIN, link.answer())
                .await
                .map_err(|_| {
                    LinkError::Connect(ConnectError::NoAnswer {
                        relay: waiting.relay.address.clone(),
                        secs: CONNECT_WITHIN.as_secs(),
                    })
                })??;
            Ok::<_, LinkError>((link, answer))
        };
        match attempt.await {
            Ok(back) => return Ok(back),
            Err(
                e @ (LinkError::Refused(_) | LinkError::Connect(ConnectError::PinMismatch { .. })),
            ) => {
                return Err(RelaysError::Link(e));
            }
            Err(e) => tracing::debug!("reconnecting failed: {e}"),
        }
        if Instant::now() + pause >= waiting.expires {
            return Err(RelaysError::Expired {
                relay: waiting.relay.address.clone(),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(BACKOFF_MOST);
    }
}

/// Why the agent has no code, or lost it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelaysError {
    #[error("no relay could give a code: {0}; check the relay addresses and the network")]
    NoneAnswered(String),
    #[error(
        "relay {relay} could not be reached again before the code expired: start sharing again for a new code"
    )]
    Expired { relay: String },
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("the code expired after {secs} s unclaimed: start sharing again for a new code")]
    Unclaimed { secs: u64 },
    #[error("cannot open a network socket to wait at the relay: {0}")]
    Socket(#[source] std::io::Error),
}
