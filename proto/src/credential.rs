//! Technician credentials: an organisation vouches for a technician's name,
//! and the technician proves in each session that the credential is theirs.
//!
//! The organisation signs, with the same kind of ed25519 key that signs
//! script catalogs, a [`Credential`]: the technician's name, their own
//! ed25519 public key, when it was issued, when it expires, and the id of
//! the signing key. The technician keeps the matching private key. In a
//! session, after the end-to-end handshake, the console signs the session's
//! [`SessionBinding`] with that private key and sends the credential and
//! the proof together as a [`Presentation`]. The agent believes the name only
//! when the credential is signed by a key it trusts, is within its validity,
//! and the proof was made for this very session; a proof copied from another
//! session, or a credential without its private key, proves nothing.
//!
//! ```text
//!  issue(org key, name, technician key, now, days) ─▶ Credential ─▶ format_file
//!  parse_file ─▶ (Credential, technician key) ─▶ present(binding) ─▶ Presentation
//!  Presentation ─▶ check(trusted keys, binding, now) ─▶ Verified | CredentialError
//! ```
//!
//! Everything here is pure: no files, no clock. Times are whole seconds
//! since the Unix epoch, passed in by the caller.

use std::time::{Duration, UNIX_EPOCH};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogError, key_id, parse_signing_key};
use crate::channel::SessionBinding;

/// Days a credential is valid when the issuer does not say.
pub const DEFAULT_VALID_DAYS: u64 = 30;
/// The longest validity `issue` grants: ten years.
pub const MAX_VALID_DAYS: u64 = 3650;
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// How far in the future an issue time may be before the agent suspects a
/// wrong clock rather than a difference between two machines' clocks.
pub const CLOCK_SKEW_SECS: u64 = 300;
/// The last second of year 9999: no time in a credential may be later, so
/// every time can be written as a date.
pub const MAX_TIME: u64 = 253_402_300_799;

const SECONDS_PER_DAY: u64 = 24 * 60 * 60;
const ALGORITHM: &str = "ed25519";
// One label per signed purpose, so a credential signature can never pass as
// a proof, a catalog signature or anything else signed with these keys.
const CREDENTIAL_LABEL: &[u8] = b"sprijin/1 technician credential";
const PROOF_LABEL: &[u8] = b"sprijin/1 technician credential proof";
/// The role that proves: only a console presents a credential.
const PROVING_ROLE: &[u8] = b"console";

/// An organisation's statement that the holder of `technician_key` is
/// `name`, until `expires_at`. Everything in it is public.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct Credential {
    pub name: String,
    /// The technician's ed25519 public key.
    pub technician_key: [u8; 32],
    /// Seconds since the Unix epoch.
    pub issued_at: u64,
    /// Seconds since the Unix epoch; not valid from this second on.
    pub expires_at: u64,
    /// The id of the organisation key that signed ([`key_id`]).
    pub issuer: String,
    /// The organisation's ed25519 signature over everything above.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// A credential and the proof that its holder is in this session.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Debug)]
pub struct Presentation {
    pub credential: Credential,
    /// The technician key's signature over the session's binding.
    #[serde(with = "serde_bytes")]
    pub proof: Vec<u8>,
}

/// A credential that checked out: the name can be believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub name: String,
    /// The id of the trusted key that signed it.
    pub issuer: String,
    pub expires_at: u64,
}

impl Verified {
    /// The expiry as a date, `YYYY-MM-DD` (UTC).
    pub fn valid_until(&self) -> String {
        date(self.expires_at)
    }
}

/// Why a credential could not be issued, read or believed. Each message is
/// one line for people; the ones an agent shows complete "name not verified: ".
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// The name is empty or only spaces.
    #[error("the technician's name is empty; give the name the person should see")]
    EmptyName,
    /// The name holds control characters, escape sequences or
    /// bidirectional marks.
    #[error("the technician's name contains control characters or direction marks; use plain text")]
    UnsafeName,
    #[error(
        "the technician's name is {chars} characters, more than the limit of {MAX_NAME_CHARS}; shorten it"
    )]
    NameTooLong { chars: usize },
    #[error("a credential must be valid for 1 to {MAX_VALID_DAYS} days, not {days}")]
    Validity { days: u64 },
    /// The credential or its file is not well formed.
    #[error("the credential is malformed: {reason}")]
    Malformed { reason: String },
    /// The signing key is not one this side trusts.
    #[error("the credential was issued by key {issuer}, which this machine does not trust")]
    Untrusted { issuer: String },
    /// The signature does not match the trusted key it names.
    #[error("the credential's signature does not match key {issuer}: it was altered")]
    BadSignature { issuer: String },
    /// The credential's validity has ended.
    #[error("the credential expired on {expired}")]
    Expired { expired: String },
    /// The credential's issue time is later than the clock allows.
    #[error("the credential is dated {issued}, in the future; check this machine's clock")]
    NotYetValid { issued: String },
    /// The proof was not made with the credential's key for this session.
    #[error("the technician did not prove they hold the credential's private key in this session")]
    BadProof,
}

impl Credential {
    /// What the organisation signs: a label, then every field, each with its
    /// length where it has no fixed one, so no two credentials sign alike.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.name.len());
        out.extend_from_slice(CREDENTIAL_LABEL);
        out.push(0);
        put(&mut out, self.name.as_bytes());
        out.extend_from_slice(&self.technician_key);
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        put(&mut out, self.issuer.as_bytes());
        out
    }

    /// The expiry as a date, `YYYY-MM-DD` (UTC).
    pub fn valid_until(&self) -> String {
        date(self.expires_at)
    }

    /// True when `secret` is the private key this credential names.
    pub fn belongs_to(&self, secret: &SigningKey) -> bool {
        secret.verifying_key().as_bytes() == &self.technician_key
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    // Names are limited far below 4 GiB, so the length always fits.
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// What the technician signs in a session: a label, the session's binding
/// and the proving role.
fn proof_bytes(binding: &SessionBinding) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROOF_LABEL.len() + 1 + 32 + PROVING_ROLE.len());
    out.extend_from_slice(PROOF_LABEL);
    out.push(0);
    out.extend_from_slice(binding.as_bytes());
    out.extend_from_slice(PROVING_ROLE);
    out
}

/// Checks a name as `issue` requires it: not empty, plain text, not too long.
/// Returns it without surrounding spaces.
pub fn check_name(name: &str) -> Result<&str, CredentialError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(CredentialError::EmptyName);
    }
    if crate::text::clean_line(name) != name {
        return Err(CredentialError::UnsafeName);
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(CredentialError::NameTooLong { chars });
    }
    Ok(name)
}

/// Issues a credential for `name` and the technician's public key, signed
/// by the organisation key, valid from `now` for `valid_days` days.
pub fn issue(
    organisation: &SigningKey,
    name: &str,
    technician: &VerifyingKey,
    now: u64,
    valid_days: u64,
) -> Result<Credential, CredentialError> {
    let name = check_name(name)?;
    if !(1..=MAX_VALID_DAYS).contains(&valid_days) {
        return Err(CredentialError::Validity { days: valid_days });
    }
    let expires_at = now
        .checked_add(valid_days * SECONDS_PER_DAY)
        .filter(|t| *t <= MAX_TIME)
        .ok_or_else(|| CredentialError::Malformed {
            reason: "the expiry would be after the year 9999; check the clock".into(),
        })?;
    let mut credential = Credential {
        name: name.to_owned(),
        technician_key: technician.to_bytes(),
        issued_at: now,
        expires_at,
        issuer: key_id(&organisation.verifying_key()),
        signature: Vec::new(),
    };
    credential.signature = organisation
        .sign(&credential.signed_bytes())
        .to_bytes()
        .to_vec();
    Ok(credential)
}

/// The console's side: the credential and a proof, made with the
/// technician's private key, that its holder is in the session with
/// `binding`.
pub fn present(
    credential: &Credential,
    technician: &SigningKey,
    binding: &SessionBinding,
) -> Presentation {
    Presentation {
        credential: credential.clone(),
        proof: technician.sign(&proof_bytes(binding)).to_bytes().to_vec(),
    }
}

/// The agent's side: believes the presentation only when the credential is
/// well formed, signed by one of `trusted`, valid at `now`, and proven for
/// the session with `binding`.
pub fn check(
    presentation: &Presentation,
    trusted: &[VerifyingKey],
    binding: &SessionBinding,
    now: u64,
) -> Result<Verified, CredentialError> {
    let credential = &presentation.credential;
    let malformed = |reason: &str| CredentialError::Malformed {
        reason: reason.to_owned(),
    };
    let name = check_name(&credential.name).map_err(|e| malformed(&e.to_string()))?;
    if name != credential.name {
        return Err(malformed("the name has spaces around it"));
    }
    let signature = Signature::from_slice(&credential.signature)
        .map_err(|_| malformed("the signature is not 64 bytes"))?;
    let technician_key = VerifyingKey::from_bytes(&credential.technician_key)
        .map_err(|_| malformed("the technician key is not a valid ed25519 public key"))?;
    if credential.expires_at > MAX_TIME || credential.issued_at >= credential.expires_at {
        return Err(malformed("its validity dates are impossible"));
    }
    let issuer = trusted
        .iter()
        .find(|key| key_id(key) == credential.issuer)
        .ok_or_else(|| CredentialError::Untrusted {
            issuer: crate::text::clean_line(&credential.issuer).into_owned(),
        })?;
    issuer
        .verify_strict(&credential.signed_bytes(), &signature)
        .map_err(|_| CredentialError::BadSignature {
            issuer: credential.issuer.clone(),
        })?;
    if credential.issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
        return Err(CredentialError::NotYetValid {
            issued: date(credential.issued_at),
        });
    }
    if now >= credential.expires_at {
        return Err(CredentialError::Expired {
            expired: date(credential.expires_at),
        });
    }
    let proof =
        Signature::from_slice(&presentation.proof).map_err(|_| CredentialError::BadProof)?;
    technician_key
        .verify_strict(&proof_bytes(binding), &proof)
        .map_err(|_| CredentialError::BadProof)?;
    Ok(Verified {
        name: credential.name.clone(),
        issuer: credential.issuer.clone(),
        expires_at: credential.expires_at,
    })
}

/// `secs` since the Unix epoch as a date, `YYYY-MM-DD` (UTC); times past
/// [`MAX_TIME`] show as its date.
pub fn date(secs: u64) -> String {
    timestamp(secs).chars().take(10).collect()
}

/// `secs` since the Unix epoch in RFC 3339, to the second (UTC).
fn timestamp(secs: u64) -> String {
    crate::utc::rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs.min(MAX_TIME)))
}

/// The credential file: the credential, readable, and the technician's
/// private key. TOML, so a person can read who it is for and until when.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    name: String,
    issued: String,
    expires: String,
    issuer: String,
    public_key: String,
    signature: String,
    secret_key: String,
}

/// The text of a credential file holding `credential` and the technician's
/// private key. The whole file must be kept private: its `secret_key` line
/// lets anyone who reads it act as this technician.
pub fn format_file(credential: &Credential, technician: &SigningKey) -> String {
    let form = FileForm {
        name: credential.name.clone(),
        issued: timestamp(credential.issued_at),
        expires: timestamp(credential.expires_at),
        issuer: credential.issuer.clone(),
        public_key: format!("{ALGORITHM} {}", hex::encode(credential.technician_key)),
        signature: format!("{ALGORITHM} {}", hex::encode(&credential.signature)),
        secret_key: format!("{ALGORITHM} {}", hex::encode(technician.to_bytes())),
    };
    // Serialising five strings to TOML cannot fail; an empty body would be
    // refused on reading rather than trusted.
    let body = toml::to_string(&form).unwrap_or_default();
    format!(
        "# Sprijin technician credential for {name}, valid until {until}.\n\
         # SECRET: secret_key proves you are this technician; keep this file private\n\
         # (owner-only) and never send it. Use it with `sprijin-console connect --credential FILE`.\n\
         {body}",
        name = crate::text::clean_line(&credential.name),
        until = credential.valid_until(),
    )
}

/// Reads a credential file's text into the credential and the technician's
/// private key. Errors never quote the private key. Whether the key belongs
/// to the credential is not checked here (see [`Credential::belongs_to`]).
pub fn parse_file(text: &str) -> Result<(Credential, SigningKey), CredentialError> {
    let malformed = |reason: String| CredentialError::Malformed { reason };
    let form: FileForm = toml::from_str(text).map_err(|e| {
        malformed(format!(
            "{}; expected the file `sprijin-console credential issue` writes",
            e.message().trim().replace('\n', " ")
        ))
    })?;
    let technician_key = hex_field::<32>(&form.public_key, "public_key").map_err(malformed)?;
    let signature = hex_field::<64>(&form.signature, "signature").map_err(malformed)?;
    let secret = hex_field::<32>(&form.secret_key, "secret_key").map_err(malformed)?;
    let credential = Credential {
        name: form.name,
        technician_key,
        issued_at: time_field(&form.issued, "issued").map_err(malformed)?,
        expires_at: time_field(&form.expires, "expires").map_err(malformed)?,
        issuer: form.issuer,
        signature: signature.to_vec(),
    };
    Ok((credential, SigningKey::from_bytes(&secret)))
}

/// `ed25519 HEX` with `N` bytes of HEX. The reason never quotes the value:
/// it may be the private key.
fn hex_field<const N: usize>(value: &str, field: &str) -> Result<[u8; N], String> {
    let expected = format!("{field} must be `{ALGORITHM} <{} hex digits>`", N * 2);
    let Some((algorithm, digits)) = value.trim().split_once(' ') else {
        return Err(expected);
    };
    if algorithm != ALGORITHM {
        return Err(format!("{expected}; only {ALGORITHM} is supported"));
    }
    let mut bytes = [0u8; N];
    hex::decode_to_slice(digits.trim(), &mut bytes).map_err(|_| expected)?;
    Ok(bytes)
}

fn time_field(value: &str, field: &str) -> Result<u64, String> {
    let expected = || format!("{field} must be a UTC time like 2026-12-25T10:00:00Z");
    let time = humantime::parse_rfc3339(value.trim()).map_err(|_| expected())?;
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| expected())?
        .as_secs();
    if secs > MAX_TIME {
        return Err(expected());
    }
    Ok(secs)
}

/// Reads the organisation's secret key file, the same file `catalog keygen`
/// makes.
pub fn parse_organisation_key(text: &str) -> Result<SigningKey, CatalogError> {
    parse_signing_key(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_790_000_000; // 2026-09-21
    const DAY: u64 = SECONDS_PER_DAY;

    fn organisation() -> SigningKey {
        SigningKey::from_bytes(&[1u8; 32])
    }

    fn technician() -> SigningKey {
        SigningKey::from_bytes(&[2u8; 32])
    }

    fn binding(byte: u8) -> SessionBinding {
        SessionBinding::from_bytes([byte; 32])
    }

    fn credential() -> Credential {
        issue(
            &organisation(),
            "Ana Pop",
            &technician().verifying_key(),
            NOW,
            30,
        )
        .unwrap()
    }

    fn trusted() -> Vec<VerifyingKey> {
        vec![
            SigningKey::from_bytes(&[9u8; 32]).verifying_key(),
            organisation().verifying_key(),
        ]
    }

    #[test]
    fn a_presented_credential_verifies_with_the_trusted_key() {
        let shown = present(&credential(), &technician(), &binding(5));
        let verified = check(&shown, &trusted(), &binding(5), NOW + DAY).unwrap();
        assert_eq!(verified.name, "Ana Pop");
        assert_eq!(verified.issuer, key_id(&organisation().verifying_key()));
        assert_eq!(verified.expires_at, NOW + 30 * DAY);
        assert_eq!(verified.valid_until(), "2026-10-21");
    }

    #[test]
    fn a_proof_from_one_session_fails_in_another() {
        let shown = present(&credential(), &technician(), &binding(5));
        assert_eq!(
            check(&shown, &trusted(), &binding(6), NOW),
            Err(CredentialError::BadProof)
        );
    }

    /// The binding both ends of a real handshake under one code arrive at.
    fn session_binding() -> (SessionBinding, SessionBinding) {
        use crate::channel::{Handshake, LinkBinding, Side};
        let link = LinkBinding {
            exporter: vec![3; 32],
            agent_certificate: b"agent".to_vec(),
            console_certificate: b"console".to_vec(),
        };
        let (agent, agent_pake) = Handshake::start(Side::Agent, "7", "velvet-harbor", link.clone());
        let (console, console_pake) = Handshake::start(Side::Console, "7", "velvet-harbor", link);
        let agent = agent.receive(&console_pake).unwrap();
        let console = console.receive(&agent_pake).unwrap();
        let (agent_tag, console_tag) = (agent.confirmation(), console.confirmation());
        let agent = agent.verify(&console_tag).unwrap();
        let console = console.verify(&agent_tag).unwrap();
        (agent.binding().clone(), console.binding().clone())
    }

    #[test]
    fn a_proof_replayed_into_another_session_under_the_same_code_fails() {
        let (agent_one, console_one) = session_binding();
        let (agent_two, _) = session_binding();
        let shown = present(&credential(), &technician(), &console_one);
        assert!(check(&shown, &trusted(), &agent_one, NOW).is_ok());
        assert_eq!(
            check(&shown, &trusted(), &agent_two, NOW),
            Err(CredentialError::BadProof)
        );
    }

    #[test]
    fn a_proof_made_without_the_credentials_key_fails() {
        let stranger = SigningKey::from_bytes(&[3u8; 32]);
        assert!(!credential().belongs_to(&stranger));
        assert!(credential().belongs_to(&technician()));
        let shown = present(&credential(), &stranger, &binding(5));
        assert_eq!(
            check(&shown, &trusted(), &binding(5), NOW),
            Err(CredentialError::BadProof)
        );
        // Nor does the organisation's signature serve as a proof.
        let mut shown = present(&credential(), &technician(), &binding(5));
        shown.proof = shown.credential.signature.clone();
        assert_eq!(
            check(&shown, &trusted(), &binding(5), NOW),
            Err(CredentialError::BadProof)
        );
    }

    #[test]
    fn a_credential_from_an_untrusted_key_is_refused_with_its_id() {
        let shown = present(&credential(), &technician(), &binding(5));
        let only_other = [SigningKey::from_bytes(&[9u8; 32]).verifying_key()];
        let err = check(&shown, &only_other, &binding(5), NOW).unwrap_err();
        let issuer = key_id(&organisation().verifying_key());
        assert_eq!(
            err,
            CredentialError::Untrusted {
                issuer: issuer.clone()
            }
        );
        assert!(err.to_string().contains(&issuer), "{err}");
        assert!(matches!(
            check(&shown, &[], &binding(5), NOW),
            Err(CredentialError::Untrusted { .. })
        ));
    }

    #[test]
    fn an_altered_credential_is_refused() {
        let mut shown = present(&credential(), &technician(), &binding(5));
        shown.credential.name = "Ana Popescu".into();
        assert!(matches!(
            check(&shown, &trusted(), &binding(5), NOW),
            Err(CredentialError::BadSignature { .. })
        ));
        let mut shown = present(&credential(), &technician(), &binding(5));
        shown.credential.expires_at += DAY;
        assert!(matches!(
            check(&shown, &trusted(), &binding(5), NOW),
            Err(CredentialError::BadSignature { .. })
        ));
        // Swapping in another technician key breaks the signature too, even
        // with a proof that key made.
        let other = SigningKey::from_bytes(&[3u8; 32]);
        let mut swapped = credential();
        swapped.technician_key = other.verifying_key().to_bytes();
        let shown = present(&swapped, &other, &binding(5));
        assert!(matches!(
            check(&shown, &trusted(), &binding(5), NOW),
            Err(CredentialError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_credential_is_valid_until_its_expiry_and_not_after() {
        let shown = present(&credential(), &technician(), &binding(5));
        let expires = NOW + 30 * DAY;
        assert!(check(&shown, &trusted(), &binding(5), expires - 1).is_ok());
        let err = check(&shown, &trusted(), &binding(5), expires).unwrap_err();
        assert_eq!(
            err,
            CredentialError::Expired {
                expired: "2026-10-21".into()
            }
        );
        assert_eq!(err.to_string(), "the credential expired on 2026-10-21");
    }

    #[test]
    fn a_credential_from_the_future_is_refused_beyond_clock_skew() {
        let shown = present(&credential(), &technician(), &binding(5));
        assert!(check(&shown, &trusted(), &binding(5), NOW - CLOCK_SKEW_SECS).is_ok());
        assert!(matches!(
            check(&shown, &trusted(), &binding(5), NOW - CLOCK_SKEW_SECS - 1),
            Err(CredentialError::NotYetValid { .. })
        ));
    }

    #[test]
    fn names_and_validity_are_checked_when_issuing() {
        let key = technician().verifying_key();
        let issue_named = |name: &str| issue(&organisation(), name, &key, NOW, 30);
        assert_eq!(issue_named("  "), Err(CredentialError::EmptyName));
        assert_eq!(issue_named(""), Err(CredentialError::EmptyName));
        assert_eq!(issue_named("Ana\x1b[2J"), Err(CredentialError::UnsafeName));
        assert_eq!(issue_named("Ana\nPop"), Err(CredentialError::UnsafeName));
        assert_eq!(
            issue_named("Ana\u{202E}poP"),
            Err(CredentialError::UnsafeName)
        );
        assert_eq!(
            issue_named(&"a".repeat(MAX_NAME_CHARS + 1)),
            Err(CredentialError::NameTooLong {
                chars: MAX_NAME_CHARS + 1
            })
        );
        assert_eq!(issue_named(" Ștefan Țepeș ").unwrap().name, "Ștefan Țepeș");
        for days in [0, MAX_VALID_DAYS + 1] {
            assert_eq!(
                issue(&organisation(), "Ana", &key, NOW, days),
                Err(CredentialError::Validity { days })
            );
        }
        assert!(issue(&organisation(), "Ana", &key, MAX_TIME, 1).is_err());
    }

    #[test]
    fn a_credential_with_an_unsafe_name_is_malformed_even_when_signed() {
        // An organisation's tool other than ours might sign anything.
        let mut forged = credential();
        forged.name = "Ana\x1b]0;owned\x07".into();
        forged.signature = organisation()
            .sign(&forged.signed_bytes())
            .to_bytes()
            .to_vec();
        let shown = present(&forged, &technician(), &binding(5));
        assert!(matches!(
            check(&shown, &trusted(), &binding(5), NOW),
            Err(CredentialError::Malformed { .. })
        ));
    }

    #[test]
    fn malformed_presentations_are_refused_without_panicking() {
        let good = present(&credential(), &technician(), &binding(5));
        let mut short_signature = good.clone();
        short_signature.credential.signature.truncate(10);
        let mut short_proof = good.clone();
        short_proof.proof.clear();
        let mut bad_dates = good.clone();
        bad_dates.credential.expires_at = bad_dates.credential.issued_at;
        let mut far = good.clone();
        far.credential.expires_at = u64::MAX;
        for (shown, expected) in [
            (short_signature, "not 64 bytes"),
            (bad_dates, "impossible"),
            (far, "impossible"),
        ] {
            let err = check(&shown, &trusted(), &binding(5), NOW).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
        }
        assert_eq!(
            check(&short_proof, &trusted(), &binding(5), NOW),
            Err(CredentialError::BadProof)
        );
    }

    #[test]
    fn the_file_round_trips_and_says_what_is_secret() {
        let text = format_file(&credential(), &technician());
        assert!(
            text.contains("# Sprijin technician credential for Ana Pop, valid until 2026-10-21")
        );
        assert!(text.contains("SECRET: secret_key"), "{text}");
        let (read, secret) = parse_file(&text).unwrap();
        assert_eq!(read, credential());
        assert_eq!(secret.to_bytes(), technician().to_bytes());
        let shown = present(&read, &secret, &binding(5));
        assert!(check(&shown, &trusted(), &binding(5), NOW).is_ok());
    }

    #[test]
    fn a_malformed_file_gets_a_one_line_reason_without_the_secret() {
        let text = format_file(&credential(), &technician());
        let secret_hex = hex::encode(technician().to_bytes());
        let cases = [
            (String::new(), "missing field"),
            ("not toml at all".to_owned(), "expected the file"),
            (
                text.replace(&secret_hex, &secret_hex[..20]),
                "secret_key must be `ed25519 <64 hex digits>`",
            ),
            (
                text.replace("ed25519 ", "rsa "),
                "only ed25519 is supported",
            ),
            (
                text.replacen("issued = \"", "issued = \"yesterday", 1),
                "issued must be a UTC time",
            ),
            (format!("{text}extra = 1\n"), "unknown field"),
        ];
        for (input, expected) in cases {
            let err = parse_file(&input).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
            assert!(!err.contains('\n'), "{err}");
            assert!(!err.contains(&secret_hex[..20]), "{err}");
        }
    }

    #[test]
    fn the_organisation_key_file_is_the_catalog_key_file() {
        let text = crate::catalog::format_signing_key(&organisation());
        let key = parse_organisation_key(&text).unwrap();
        assert_eq!(key.to_bytes(), organisation().to_bytes());
    }
}
