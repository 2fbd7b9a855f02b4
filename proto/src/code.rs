//! The session code a person reads out to the technician: `NAMEPLATE-WORD-WORD`,
//! e.g. `7-velvet-harbor`.
//!
//! The nameplate is a short number the relay hands out; it only says where to
//! meet and is not secret. The password is two words the agent picks locally
//! from [`crate::words::WORDS`] (1024 words, so 20 bits); the relay never sees it.
//! Codes are parsed at the boundary into [`SessionCode`], which exposes only its
//! two halves.
//!
//! In a fleet of relays the nameplate also says which relay handed it out,
//! so any relay can send a console to the right one ([`Nameplate::owner`]):
//!
//! - below 1,000,000 a nameplate belongs to relay `n / 1000`: relay 0 hands
//!   out 1–999, relay 1 1001–1999, relay 7 7001–7999 (short codes);
//! - from 1,000,000 up it belongs to relay `n % 1000`: a relay moves there
//!   only when more than about 500 of its short numbers are in use.
//!
//! A lone relay is relay 0, so its codes are as short as ever.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::words::{WORDS, index_of};

/// How many words the password part has.
pub const PASSWORD_WORDS: usize = 2;

/// The public half of a code: which waiting agent to meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Nameplate(u32);

impl Nameplate {
    pub fn new(n: u32) -> Option<Self> {
        (n > 0).then_some(Nameplate(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Nameplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Nameplate {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeError::BadNameplate(s.to_string()));
        }
        s.parse::<u32>()
            .ok()
            .and_then(Nameplate::new)
            .ok_or_else(|| CodeError::BadNameplate(s.to_string()))
    }
}

/// Which relay of a fleet this is: 0 to [`RelayId::MAX`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct RelayId(u16);

impl RelayId {
    /// The highest relay id: the long nameplates keep the id in their last
    /// three digits.
    pub const MAX: u16 = 999;

    pub fn new(n: u16) -> Option<Self> {
        (n <= Self::MAX).then_some(RelayId(n))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for RelayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for RelayId {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u16>()
            .ok()
            .and_then(RelayId::new)
            .ok_or_else(|| CodeError::BadRelayId(s.to_string()))
    }
}

/// Numbers per relay among the short nameplates, and the factor that puts
/// the relay id in the last digits of the long ones.
const BLOCK: u32 = 1000;

/// The first long nameplate.
const LONG: u32 = 1_000_000;

/// The local numbers a relay hands out: `1..=SHORT_MAX` are short
/// nameplates, `LONG_MIN..=LONG_MAX` long ones.
pub const SHORT_MAX: u32 = BLOCK - 1;
pub const LONG_MIN: u32 = BLOCK;
pub const LONG_MAX: u32 = LONG - 1;

impl Nameplate {
    /// The relay that handed this nameplate out.
    pub fn owner(self) -> RelayId {
        let id = if self.0 < LONG {
            self.0 / BLOCK
        } else {
            self.0 % BLOCK
        };
        // Both branches are below 1000 for any u32.
        RelayId(u16::try_from(id).unwrap_or(RelayId::MAX))
    }

    /// Relay `relay`'s nameplate with local number `local`: short for
    /// `1..=SHORT_MAX`, long for `LONG_MIN..=LONG_MAX`, none otherwise.
    pub fn of_relay(relay: RelayId, local: u32) -> Option<Nameplate> {
        let id = u32::from(relay.0);
        match local {
            1..=SHORT_MAX => Nameplate::new(id * BLOCK + local),
            LONG_MIN..=LONG_MAX => Nameplate::new(local * BLOCK + id),
            _ => None,
        }
    }
}

/// The secret half of a code. Its `Debug` never shows the words.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Picks [`PASSWORD_WORDS`] words at random with the system's CSPRNG.
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let words: Vec<&str> = (0..PASSWORD_WORDS)
            .map(|_| WORDS[rng.gen_range(0..WORDS.len())])
            .collect();
        Password(words.join("-"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The words of the password, for tests that look for them on the wire.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.split('-')
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A whole code as read out: nameplate and password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCode {
    nameplate: Nameplate,
    password: Password,
}

impl SessionCode {
    pub fn new(nameplate: Nameplate, password: Password) -> Self {
        SessionCode {
            nameplate,
            password,
        }
    }

    pub fn nameplate(&self) -> Nameplate {
        self.nameplate
    }

    pub fn password(&self) -> &Password {
        &self.password
    }
}

impl fmt::Display for SessionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.nameplate, self.password.0)
    }
}

impl FromStr for SessionCode {
    type Err = CodeError;

    /// Accepts `7-velvet-harbor`, and is lenient about what people type:
    /// upper case, spaces instead of dashes, surrounding blanks.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(CodeError::Empty);
        }
        let mut parts = s
            .split(|c: char| c == '-' || c.is_whitespace())
            .filter(|p| !p.is_empty());
        let nameplate: Nameplate = parts.next().ok_or(CodeError::Empty)?.parse()?;
        let words: Vec<&str> = parts.collect();
        if words.len() != PASSWORD_WORDS {
            return Err(CodeError::WordCount {
                expected: PASSWORD_WORDS,
                found: words.len(),
            });
        }
        let mut canonical = Vec::with_capacity(words.len());
        for word in words {
            let index = index_of(word).ok_or_else(|| CodeError::UnknownWord(word.to_string()))?;
            canonical.push(WORDS[index]);
        }
        Ok(SessionCode {
            nameplate,
            password: Password(canonical.join("-")),
        })
    }
}

/// Why a typed code was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    #[error("the code is empty: type the code the person reads out, like 7-velvet-harbor")]
    Empty,
    #[error(
        "the code must start with a number, not {0:?}: type the code the person reads out, like 7-velvet-harbor"
    )]
    BadNameplate(String),
    #[error(
        "the code must have {expected} words after the number, found {found}: check the code with the person"
    )]
    WordCount { expected: usize, found: usize },
    #[error("{0:?} is not a code word: check the spelling with the person")]
    UnknownWord(String),
    #[error("{0:?} is not a relay id: give a number from 0 to 999")]
    BadRelayId(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_code_round_trips_through_display() {
        let code = SessionCode::new(Nameplate::new(42).unwrap(), Password::generate());
        let text = code.to_string();
        assert!(text.starts_with("42-"));
        assert_eq!(text.parse::<SessionCode>().unwrap(), code);
    }

    #[test]
    fn parsing_is_lenient_about_case_and_separators() {
        let (a, b) = (WORDS[3], WORDS[1000]);
        let code: SessionCode = format!("  7 {}-{} ", a.to_uppercase(), b).parse().unwrap();
        assert_eq!(code.nameplate().get(), 7);
        assert_eq!(code.password().as_str(), format!("{a}-{b}"));
    }

    #[test]
    fn malformed_codes_are_refused_with_reasons() {
        assert_eq!("".parse::<SessionCode>(), Err(CodeError::Empty));
        assert_eq!("   ".parse::<SessionCode>(), Err(CodeError::Empty));
        assert!(matches!(
            "x-a-b".parse::<SessionCode>(),
            Err(CodeError::BadNameplate(_))
        ));
        assert!(matches!(
            "0-a-b".parse::<SessionCode>(),
            Err(CodeError::BadNameplate(_))
        ));
        assert!(matches!(
            "99999999999-a-b".parse::<SessionCode>(),
            Err(CodeError::BadNameplate(_))
        ));
        assert_eq!(
            format!("7-{}", WORDS[0]).parse::<SessionCode>(),
            Err(CodeError::WordCount {
                expected: 2,
                found: 1
            })
        );
        assert_eq!(
            format!("7-{}-{}-{}", WORDS[0], WORDS[1], WORDS[2]).parse::<SessionCode>(),
            Err(CodeError::WordCount {
                expected: 2,
                found: 3
            })
        );
        assert_eq!(
            format!("7-{}-qqqqzz", WORDS[0]).parse::<SessionCode>(),
            Err(CodeError::UnknownWord("qqqqzz".into()))
        );
    }

    #[test]
    fn a_nameplate_names_the_relay_that_handed_it_out() {
        let relay = |n| RelayId::new(n).unwrap();
        let np = |n| Nameplate::new(n).unwrap();
        assert_eq!(np(7).owner(), relay(0));
        assert_eq!(np(999).owner(), relay(0));
        assert_eq!(np(1001).owner(), relay(1));
        assert_eq!(np(7042).owner(), relay(7));
        assert_eq!(np(999_999).owner(), relay(999));
        assert_eq!(np(1_000_007).owner(), relay(7));
        assert_eq!(np(123_456_000).owner(), relay(0));
        assert_eq!(np(u32::MAX).owner().get(), 295);
        for id in [0, 1, 7, 42, 999] {
            for local in [1, 500, SHORT_MAX, LONG_MIN, 54_321, LONG_MAX] {
                let n = Nameplate::of_relay(relay(id), local).unwrap();
                assert_eq!(n.owner(), relay(id), "{n}");
                assert!(n.to_string().len() <= 9, "{n}");
                assert!(n.to_string().parse::<Nameplate>().is_ok(), "{n}");
            }
            assert_eq!(Nameplate::of_relay(relay(id), 0), None);
            assert_eq!(Nameplate::of_relay(relay(id), LONG_MAX + 1), None);
        }
        assert_eq!(Nameplate::of_relay(relay(0), 42), Some(np(42)));
        assert_eq!(Nameplate::of_relay(relay(3), 42), Some(np(3042)));
        assert_eq!(Nameplate::of_relay(relay(3), 4242), Some(np(4_242_003)));
        assert!(RelayId::new(1000).is_none());
        assert!("1000".parse::<RelayId>().is_err());
        assert_eq!("12".parse::<RelayId>(), Ok(relay(12)));
    }

    #[test]
    fn password_debug_hides_the_words() {
        let p = Password::generate();
        let shown = format!("{p:?}");
        for w in p.words() {
            assert!(!shown.contains(w));
        }
    }
}
