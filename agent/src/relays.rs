//! Getting a code and keeping it until a technician claims it.
//!
//! [`open`] tries the configured relays in order, each with a short connect
//! timeout, and asks the first that answers for a nameplate; the person is
//! told which relays did not answer. [`wait`] then waits to be paired. If
//! the connection to the relay is lost meanwhile (the relay restarted, the
//! network dropped), the agent reconnects to the same relay by itself, with
//! backoff, until the code expires, and presents its waiting ticket: the
//! relay makes the same nameplate wait again, so the code the person read
//! out still works. The code is printed once.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sprijin_proto::client::{ConnectError, LinkError, RelayLink};
use sprijin_proto::code::Nameplate;
use sprijin_proto::fleet::RelayAddr;
use sprijin_proto::message::control::{ClientMsg, ErrorCode, RelayMsg, Role, Technician};
use sprijin_proto::path::Ticket;
use sprijin_proto::tls::Fingerprint;
use sprijin_proto::waiting::WaitingTicket;
use tokio::time::Instant;

use crate::config::AgentConfig;
use crate::face::{Face, Notice};

/// How long one relay has to answer before the next one is tried.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// The first and the longest pause between attempts to reconnect.
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MOST: Duration = Duration::from_secs(10);

/// An agent waiting at a relay with its nameplate.
pub struct Waiting {
    pub link: RelayLink,
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
    /// A technician claimed the code; the link now belongs to the session.
    Paired {
        link: Box<RelayLink>,
        technician: Technician,
        ticket: Ticket,
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

/// Waits until a technician claims the code or `stop` completes,
/// reconnecting to the relay whenever the connection is lost.
pub async fn wait<S>(
    mut waiting: Waiting,
    stop: &mut Pin<&mut S>,
    face: &dyn Face,
) -> Result<Waited, RelaysError>
where
    S: Future<Output = ()>,
{
    loop {
        let lost = tokio::select! {
            msg = waiting.link.answer() => match msg {
                Ok(RelayMsg::Paired { technician: Some(technician), ticket }) => {
                    return Ok(Waited::Paired { link: Box::new(waiting.link), technician, ticket });
                }
                Ok(other) => return Err(RelaysError::Link(LinkError::unexpected(&other))),
                // The relay's own word (the code expired) is final.
                Err(e @ LinkError::Refused(_)) => return Err(RelaysError::Link(e)),
                Err(e) => e,
            },
            () = stop.as_mut() => return Ok(Waited::Stopped),
        };
        face.show(Notice::RelayLost {
            relay: waiting.relay.address.to_string(),
            reason: lost.to_string(),
        });
        let link = tokio::select! {
            link = reconnect(&waiting) => link?,
            () = stop.as_mut() => return Ok(Waited::Stopped),
        };
        let old = std::mem::replace(&mut waiting.link, link);
        old.endpoint.close(0u32.into(), b"reconnected");
        face.show(Notice::RelayBack {
            relay: waiting.relay.address.to_string(),
        });
    }
}

/// Connects to the same relay again and presents the waiting ticket,
/// backing off between attempts, until the code expires.
async fn reconnect(waiting: &Waiting) -> Result<RelayLink, RelaysError> {
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
            Ok((link, RelayMsg::Opened { nameplate, .. })) if nameplate == waiting.nameplate => {
                return Ok(link);
            }
            Ok((_, other)) => return Err(RelaysError::Link(LinkError::unexpected(&other))),
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
}
