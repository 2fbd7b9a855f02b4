//! Claiming a code at the relay that owns it.
//!
//! In a fleet, a nameplate says which relay handed it out, and a relay that
//! is asked for another relay's nameplate answers with a redirect to it. The
//! console follows one redirect by itself: it connects to the relay named,
//! pinning the fingerprint the first relay vouched for (or its own pin when
//! none was given), and claims there. A second redirect is an error, so
//! relays whose peer lists disagree cannot send a console in circles.

use sprijin_proto::client::{LinkError, RelayLink};
use sprijin_proto::code::SessionCode;
use sprijin_proto::framing::FrameError;
use sprijin_proto::message::control::{ClientMsg, Redirect, RelayMsg, Role};
use sprijin_proto::tls::Fingerprint;

use sprijin_proto::path::Ticket;

use crate::session::{ConnectOptions, SessionError};

/// How long a claim may wait for the relay's answer, which comes at once
/// from a relay that is not overloaded.
const PAIRED_WITHIN: std::time::Duration = std::time::Duration::from_secs(40);

/// Connects to the relay of `opts`, claims `code`, follows at most one
/// redirect, and returns the link and this side's forwarding ticket once
/// the relay says the two are paired.
pub async fn claim(
    code: &SessionCode,
    opts: &ConnectOptions,
) -> Result<(RelayLink, Ticket), SessionError> {
    let first = match claim_at(&opts.relay, opts.relay_fingerprint, code, opts).await? {
        Claimed::Paired(link, ticket) => return Ok((link, ticket)),
        Claimed::Redirect(r) => r,
    };
    let pin = match &first.fingerprint {
        Some(text) => Some(text.parse::<Fingerprint>().map_err(|_| {
            SessionError::Protocol(format!(
                "relay {} sent a malformed fingerprint for relay {}: {text:?}",
                opts.relay, first.relay_id
            ))
        })?),
        None => opts.relay_fingerprint,
    };
    eprintln!(
        "note: code {} belongs to relay {}; claiming it at {}",
        code.nameplate(),
        first.relay_id,
        first.address
    );
    match claim_at(&first.address, pin, code, opts).await? {
        Claimed::Paired(link, ticket) => Ok((link, ticket)),
        Claimed::Redirect(second) => Err(SessionError::Protocol(format!(
            "relay {} sent the claim to relay {} at {}, which sent it on to relay {} at {}: the relays' peer lists disagree; tell the relays' operator",
            opts.relay, first.relay_id, first.address, second.relay_id, second.address
        ))),
    }
}

enum Claimed {
    Paired(RelayLink, Ticket),
    Redirect(Redirect),
}

async fn claim_at(
    relay: &str,
    pin: Option<Fingerprint>,
    code: &SessionCode,
    opts: &ConnectOptions,
) -> Result<Claimed, SessionError> {
    let mut link = RelayLink::connect(relay, pin, Role::Console).await?;
    link.writer
        .write_msg(&ClientMsg::Claim {
            nameplate: code.nameplate(),
            technician: opts.technician.clone(),
            token: opts.token.clone(),
        })
        .await?;
    // The relay answers at once that the two are paired (and later, while
    // set-up runs, if the agent never comes; see the session); a stream
    // that ends unanswered is the agent leaving as the claim came.
    let answer = tokio::time::timeout(PAIRED_WITHIN, link.answer())
        .await
        .map_err(|_| SessionError::AgentGone)?;
    let answer = match answer {
        Err(LinkError::Frame(FrameError::Closed | FrameError::Io(_) | FrameError::Truncated)) => {
            return Err(SessionError::AgentGone);
        }
        other => other?,
    };
    match answer {
        RelayMsg::Paired { ticket, .. } => Ok(Claimed::Paired(link, ticket)),
        RelayMsg::Redirect(r) => {
            link.connection.close(0u32.into(), b"redirected");
            Ok(Claimed::Redirect(r))
        }
        other => Err(LinkError::unexpected(&other).into()),
    }
}
