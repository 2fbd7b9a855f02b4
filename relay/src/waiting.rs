//! Waiting codes that outlive the relay process: the relay's secret (see
//! [`crate::secret`]) makes the MAC of every waiting ticket, so a restarted
//! relay can take a waiting agent back from its ticket.
//!
//! [`admit`] turns an agent's request (a new code, or its ticket back) into
//! a waiting entry in the rendezvous table and the ticket to send it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sprijin_proto::code::{Nameplate, RelayId};
use sprijin_proto::message::control::{ErrorCode, ErrorFrame};
use sprijin_proto::waiting::{TicketError, WaitingKey, WaitingTicket};

use crate::limits::LimitKey;
use crate::rendezvous::{Opened, Rendezvous};

/// A nameplate now waiting for an agent, and what to tell the agent.
pub struct Admitted<T> {
    pub opened: Opened<T>,
    /// How long the nameplate waits from now.
    pub ttl: Duration,
    pub ticket: WaitingTicket,
}

/// Admits an agent: a fresh nameplate for `Open`, or its own back for a
/// `Reopen` with a valid ticket; the error frame to refuse it with
/// otherwise.
pub fn admit<T>(
    table: &Rendezvous<T>,
    key: &WaitingKey,
    relay: RelayId,
    addr: LimitKey,
    reopen: Option<&WaitingTicket>,
    ttl: Duration,
) -> Result<Admitted<T>, ErrorFrame> {
    let now = unix_now();
    match reopen {
        None => {
            let expires_at = now + ttl.as_secs();
            let opened = table.open(addr, expires_at).map_err(|e| e.frame())?;
            let ticket = key.issue(opened.nameplate, expires_at);
            Ok(Admitted {
                opened,
                ttl,
                ticket,
            })
        }
        Some(ticket) => {
            let left = key
                .check(ticket, now)
                .map_err(|e| refusal(e, ticket.nameplate))?;
            if ticket.nameplate.owner() != relay {
                return Err(refusal(TicketError::Forged, ticket.nameplate));
            }
            let opened = table
                .reopen(addr, ticket.nameplate, ticket.expires_at)
                .map_err(|e| e.frame())?;
            Ok(Admitted {
                opened,
                ttl: Duration::from_secs(left),
                ticket: ticket.clone(),
            })
        }
    }
}

fn refusal(e: TicketError, nameplate: Nameplate) -> ErrorFrame {
    let code = match e {
        TicketError::Expired => ErrorCode::ExpiredNameplate,
        _ => ErrorCode::BadTicket,
    };
    ErrorFrame::new(code, format!("cannot take code {nameplate} back: {e}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
