//! Who the technician is, as the person is told: a name the organisation
//! vouches for, or a name plainly marked as not verified, with the reason.
//!
//! The relay pairs the two sides and passes on the name the console gave
//! (or the one its token list holds), but the relay is not trusted with
//! identity: its word is only ever shown as "not verified". A name is
//! verified only by a credential signed with one of this machine's trusted
//! keys (the keys that verify catalogs), within its validity, and proven by
//! the technician for this very session (see `sprijin_proto::credential`).
//!
//! [`receive`] reads the console's first message in the session, which says who the
//! technician is; [`Identity::decide`] turns that into what the session
//! shows in the "connected" line, asks in the consent question, records in
//! the audit log and reports back to the console.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sprijin_proto::catalog::VerifyingKey;
use sprijin_proto::channel::SessionBinding;
use sprijin_proto::credential::{self, CredentialError, MAX_NAME_CHARS, Presentation};
use sprijin_proto::framing::{FrameError, FrameReader};
use sprijin_proto::message::control::Technician;
use sprijin_proto::message::session::{AgentMsg, ConsoleMsg};
use sprijin_proto::text::clean_line;
use tokio::io::AsyncRead;

/// How long the agent waits for the console to say who the technician is.
/// A console that says nothing (an older one) is treated as having no
/// credential once this runs out.
pub const IDENTIFY_WAIT: Duration = Duration::from_secs(10);

/// Shown when neither the credential nor the relay gives a name.
const NO_NAME: &str = "a technician";

/// What the person is told about the technician.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The name, cleaned for the terminal.
    pub name: String,
    /// How the name stands.
    pub standing: Standing,
}

/// Whether the name can be believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// A trusted key vouches for the name until `valid_until` (a date).
    Verified { key_id: String, valid_until: String },
    /// Only a claim; `reason` says why it is not verified.
    NotVerified { reason: Unverified },
}

/// Why a name is not verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// The console said it has no credential.
    NoCredential,
    /// The console said nothing about a credential in time.
    ConsoleSilent,
    /// A credential came and does not hold; why, in the words of the check.
    Refused(String),
}

impl fmt::Display for Unverified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unverified::NoCredential => f.write_str("no credential"),
            Unverified::ConsoleSilent => f.write_str("no credential (the console sent none)"),
            Unverified::Refused(why) => f.write_str(why),
        }
    }
}

/// What the console's first message said.
#[derive(Debug)]
pub enum Presented {
    /// A credential and its proof.
    Credential(Box<Presentation>),
    /// The console said it has none.
    Nothing,
    /// The console said nothing in time.
    Silent,
}

/// Reads the console's first message, the technician's identity, waiting
/// at most `wait`. The session cannot go on when the console ends it or
/// sends anything else first.
pub async fn receive<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    wait: Duration,
) -> Result<Presented, IdentifyError> {
    match tokio::time::timeout(wait, reader.read_msg::<ConsoleMsg>()).await {
        Err(_) => Ok(Presented::Silent),
        Ok(Ok(Some(ConsoleMsg::Identify {
            presentation: Some(p),
        }))) => Ok(Presented::Credential(p)),
        Ok(Ok(Some(ConsoleMsg::Identify { presentation: None }))) => Ok(Presented::Nothing),
        Ok(Ok(Some(ConsoleMsg::Bye))) | Ok(Ok(None)) => {
            Err(IdentifyError::Stream(FrameError::Closed))
        }
        Ok(Ok(Some(ConsoleMsg::Request { .. }))) => Err(IdentifyError::Unexpected),
        Ok(Err(e)) => Err(IdentifyError::Stream(e)),
    }
}

/// Why the technician's identity could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifyError {
    #[error(transparent)]
    Stream(FrameError),
    #[error(
        "the technician's console sent a request before saying who the technician is; the session was ended"
    )]
    Unexpected,
}

impl Identity {
    /// Decides what to show. `relay` is what the relay said at pairing,
    /// used only as an unverified name when no credential was presented.
    pub fn decide(
        relay: &Technician,
        presented: &Presented,
        trusted: &[VerifyingKey],
        binding: &SessionBinding,
        now: SystemTime,
    ) -> Identity {
        let credential = match presented {
            Presented::Credential(p) => p,
            Presented::Nothing => return Identity::claimed(&relay.name, Unverified::NoCredential),
            Presented::Silent => return Identity::claimed(&relay.name, Unverified::ConsoleSilent),
        };
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match credential::check(credential, trusted, binding, now) {
            Ok(verified) => Identity {
                name: shown_name(&verified.name),
                standing: Standing::Verified {
                    valid_until: verified.valid_until(),
                    key_id: verified.issuer,
                },
            },
            // A credential that does not hold is still the technician's own
            // claim of a name, so that name is the one marked as unverified.
            Err(e) => {
                Identity::claimed(&credential.credential.name, Unverified::Refused(reason(&e)))
            }
        }
    }

    fn claimed(name: &str, reason: Unverified) -> Identity {
        Identity {
            name: shown_name(name),
            standing: Standing::NotVerified { reason },
        }
    }

    pub fn verified(&self) -> bool {
        matches!(self.standing, Standing::Verified { .. })
    }

    /// The id of the trusted key that vouches for the name.
    pub fn key_id(&self) -> Option<&str> {
        match &self.standing {
            Standing::Verified { key_id, .. } => Some(key_id),
            Standing::NotVerified { .. } => None,
        }
    }

    /// Why the name is not verified.
    pub fn reason(&self) -> Option<&Unverified> {
        match &self.standing {
            Standing::Verified { .. } => None,
            Standing::NotVerified { reason } => Some(reason),
        }
    }

    /// The message that tells the console how the person sees it.
    pub fn to_message(&self) -> AgentMsg {
        AgentMsg::Identity {
            verified: self.verified(),
            shown: self.to_string(),
            reason: self.reason().map(ToString::to_string),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.standing {
            Standing::Verified {
                key_id,
                valid_until,
            } => write!(
                f,
                "{} — verified by your organisation (key {key_id}), valid until {valid_until}",
                self.name
            ),
            Standing::NotVerified { reason } => {
                write!(f, "{} (name not verified: {reason})", self.name)
            }
        }
    }
}

/// Marks a name cut to [`MAX_NAME_CHARS`].
const CUT: char = '…';

/// The name as shown: cleaned, and never longer than a verified name may
/// be, whatever sent it, so a long claim cannot push "not verified" off the
/// screen; a longer one is cut and ends with [`CUT`].
fn shown_name(name: &str) -> String {
    let name = clean_line(name.trim());
    if name.is_empty() {
        return NO_NAME.to_owned();
    }
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.into_owned();
    }
    let mut cut: String = name.chars().take(MAX_NAME_CHARS - 1).collect();
    cut.push(CUT);
    cut
}

/// The reason, worded to follow "name not verified: ".
fn reason(error: &CredentialError) -> String {
    match error {
        CredentialError::BadProof => {
            "bad proof: the technician did not prove they hold this credential in this session"
                .to_owned()
        }
        other => clean_line(&other.to_string()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sprijin_proto::catalog::SigningKey;
    use sprijin_proto::credential::{issue, present};

    const NOW: u64 = 1_790_000_000;

    fn organisation() -> SigningKey {
        SigningKey::from_bytes(&[1u8; 32])
    }

    fn technician() -> SigningKey {
        SigningKey::from_bytes(&[2u8; 32])
    }

    fn relay(name: &str, vouched: bool) -> Technician {
        Technician {
            name: name.into(),
            vouched,
        }
    }

    fn binding() -> SessionBinding {
        SessionBinding::from_bytes([4; 32])
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn presented(name: &str) -> Presented {
        let credential = issue(
            &organisation(),
            name,
            &technician().verifying_key(),
            NOW,
            30,
        )
        .unwrap();
        Presented::Credential(Box::new(present(&credential, &technician(), &binding())))
    }

    #[test]
    fn a_valid_credential_shows_the_name_as_verified() {
        let trusted = [organisation().verifying_key()];
        let id = Identity::decide(
            &relay("Mallory", false),
            &presented("Ana Pop"),
            &trusted,
            &binding(),
            at(NOW),
        );
        let key = sprijin_proto::catalog::key_id(&trusted[0]);
        assert!(id.verified());
        assert_eq!(id.key_id(), Some(key.as_str()));
        assert_eq!(
            id.to_string(),
            format!("Ana Pop — verified by your organisation (key {key}), valid until 2026-10-21")
        );
    }

    #[test]
    fn the_relays_word_alone_is_not_verified() {
        let id = Identity::decide(
            &relay("Ana Pop", true),
            &Presented::Nothing,
            &[organisation().verifying_key()],
            &binding(),
            at(NOW),
        );
        assert!(!id.verified());
        assert_eq!(id.to_string(), "Ana Pop (name not verified: no credential)");
    }

    #[test]
    fn an_untrusted_credential_says_why() {
        let id = Identity::decide(
            &relay("x", false),
            &presented("Ana Pop"),
            &[],
            &binding(),
            at(NOW),
        );
        let shown = id.to_string();
        assert!(
            shown.starts_with(
                "Ana Pop (name not verified: the credential was issued by key ed25519:"
            ),
            "{shown}"
        );
        assert!(
            shown.contains("which this machine does not trust"),
            "{shown}"
        );
    }

    #[test]
    fn names_from_the_relay_are_cleaned_for_the_terminal() {
        let id = Identity::decide(
            &relay("Ana\x1b[2J\u{202E}Pop", true),
            &Presented::Silent,
            &[],
            &binding(),
            at(NOW),
        );
        assert_eq!(
            id.to_string(),
            "Ana�[2J�Pop (name not verified: no credential (the console sent none))"
        );
        let id = Identity::decide(
            &relay("  ", false),
            &Presented::Nothing,
            &[],
            &binding(),
            at(NOW),
        );
        assert_eq!(id.name, "a technician");
    }

    #[test]
    fn a_long_name_that_fails_its_checks_is_cut_like_a_verified_one() {
        let trusted = [organisation().verifying_key()];
        let mut forged = presented("Ana Pop");
        if let Presented::Credential(p) = &mut forged {
            p.credential.name = format!("Ana Pop{}", " ".repeat(5000));
            p.credential.name.push_str("(verified)");
        }
        let id = Identity::decide(&relay("x", false), &forged, &trusted, &binding(), at(NOW));
        assert!(!id.verified());
        assert_eq!(id.name.chars().count(), MAX_NAME_CHARS);
        assert!(id.name.ends_with(CUT), "{:?}", id.name);
        let shown = id.to_string();
        let marker = shown.find("(name not verified: ").expect("marked");
        assert!(
            shown[..marker].chars().count() <= MAX_NAME_CHARS + 1,
            "{shown}"
        );

        // The relay's word is cut the same way.
        let id = Identity::decide(
            &relay(&"B".repeat(MAX_NAME_CHARS + 1), false),
            &Presented::Nothing,
            &trusted,
            &binding(),
            at(NOW),
        );
        assert_eq!(id.name.chars().count(), MAX_NAME_CHARS);
        // A name of the longest size a credential may carry is shown whole.
        let id = Identity::decide(
            &relay(&"C".repeat(MAX_NAME_CHARS), false),
            &Presented::Nothing,
            &trusted,
            &binding(),
            at(NOW),
        );
        assert_eq!(id.name, "C".repeat(MAX_NAME_CHARS));
    }

    #[test]
    fn a_proof_for_another_session_is_a_bad_proof() {
        let id = Identity::decide(
            &relay("x", false),
            &presented("Ana Pop"),
            &[organisation().verifying_key()],
            &SessionBinding::from_bytes([5; 32]),
            at(NOW),
        );
        assert!(
            id.reason().unwrap().to_string().starts_with("bad proof"),
            "{id}"
        );
    }
}
