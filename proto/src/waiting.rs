//! The waiting ticket: what lets an agent keep its code when its connection
//! to the relay is lost while it waits, even across a relay restart.
//!
//! With `Opened` the relay gives the agent a [`WaitingTicket`]: the
//! nameplate, when it expires, and a MAC under a key only the relay holds
//! (kept in its data dir, so it survives a restart). An agent that lost its
//! connection presents the ticket again (`ClientMsg::Reopen`); the relay
//! checks the MAC and the expiry without having remembered anything, and
//! makes the nameplate wait again. The ticket is opaque to the agent.
//! Pure functions: no I/O here.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::code::Nameplate;

type HmacSha256 = Hmac<Sha256>;

/// Binds the MAC to its purpose, so no other MAC under the key can pass
/// for a waiting ticket.
const LABEL: &[u8] = b"sprijin waiting ticket v1";

/// A waiting agent's proof that the relay gave it this nameplate.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WaitingTicket {
    pub nameplate: Nameplate,
    /// Seconds since the Unix epoch after which the code no longer works.
    pub expires_at: u64,
    pub mac: [u8; 32],
}

/// The relay's secret for waiting tickets.
#[derive(Clone)]
pub struct WaitingKey([u8; 32]);

impl std::fmt::Debug for WaitingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitingKey(..)")
    }
}

impl WaitingKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        WaitingKey(bytes)
    }

    fn mac(&self, nameplate: Nameplate, expires_at: u64) -> HmacSha256 {
        // HMAC pads a short key with zeros to its block, so this is the
        // HMAC of the 32-byte key itself.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        let mut mac = HmacSha256::new(&block.into());
        mac.update(LABEL);
        mac.update(&nameplate.get().to_be_bytes());
        mac.update(&expires_at.to_be_bytes());
        mac
    }

    /// A ticket for `nameplate`, good until `expires_at` (Unix seconds).
    pub fn issue(&self, nameplate: Nameplate, expires_at: u64) -> WaitingTicket {
        WaitingTicket {
            nameplate,
            expires_at,
            mac: self
                .mac(nameplate, expires_at)
                .finalize()
                .into_bytes()
                .into(),
        }
    }

    /// Checks that this key made `ticket` and that it has not expired at
    /// `now` (Unix seconds); on success, the seconds it has left.
    pub fn check(&self, ticket: &WaitingTicket, now: u64) -> Result<u64, TicketError> {
        self.mac(ticket.nameplate, ticket.expires_at)
            .verify_slice(&ticket.mac)
            .map_err(|_| TicketError::Forged)?;
        match ticket.expires_at.checked_sub(now) {
            Some(left) if left > 0 => Ok(left),
            _ => Err(TicketError::Expired),
        }
    }
}

/// Why a waiting ticket is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    #[error(
        "this relay did not issue the waiting ticket (it was altered, or the relay's key changed): start sharing again for a new code"
    )]
    Forged,
    #[error(
        "the code expired while the agent was reconnecting: start sharing again for a new code"
    )]
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_passes_until_it_expires_and_not_when_altered() {
        let key = WaitingKey::from_bytes([7; 32]);
        let n = Nameplate::new(42).unwrap();
        let ticket = key.issue(n, 1_000);
        assert_eq!(key.check(&ticket, 400), Ok(600));
        assert_eq!(key.check(&ticket, 1_000), Err(TicketError::Expired));
        let mut later = ticket.clone();
        later.expires_at += 3600;
        assert_eq!(key.check(&later, 400), Err(TicketError::Forged));
        let mut other = ticket.clone();
        other.nameplate = Nameplate::new(43).unwrap();
        assert_eq!(key.check(&other, 400), Err(TicketError::Forged));
        let stranger = WaitingKey::from_bytes([8; 32]);
        assert_eq!(stranger.check(&ticket, 400), Err(TicketError::Forged));
    }
}
