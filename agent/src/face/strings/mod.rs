//! Every sentence the window shows, in the person's language.
//!
//! One file per language holds a [`Strings`] table; adding a language is
//! one more file and one more [`Lang`]. The language comes from `--lang`,
//! else the config file's `lang`, else the system locale (`LC_ALL`,
//! `LC_MESSAGES`, `LANG`, the first one set), else English. The terminal
//! keeps its English lines, which scripts read.

use std::fmt;
use std::str::FromStr;

use crate::identity::{Standing, Unverified};

mod en;
pub mod findings;
mod ro;

/// A language the window speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Ro,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ro];

    /// The table of this language.
    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &en::STRINGS,
            Lang::Ro => &ro::STRINGS,
        }
    }

    /// The language of the system locale, English when it names none we
    /// speak.
    pub fn from_env() -> Lang {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty());
        locale.map_or(Lang::En, |l| Lang::from_locale(&l))
    }

    /// `ro_RO.UTF-8` is Romanian; anything else we do not speak is English.
    pub fn from_locale(locale: &str) -> Lang {
        let code = locale
            .split(['_', '.', '@', '-'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Lang::ALL
            .into_iter()
            .find(|lang| lang.code() == code)
            .unwrap_or(Lang::En)
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ro => "ro",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A language code that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a language the window speaks: use en or ro")]
pub struct UnknownLang(pub String);

impl FromStr for Lang {
    type Err = UnknownLang;

    fn from_str(s: &str) -> Result<Lang, UnknownLang> {
        Lang::ALL
            .into_iter()
            .find(|lang| lang.code() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| UnknownLang(s.to_string()))
    }
}

/// The window's sentences in one language. Sentences with a number or a
/// name in them are functions.
pub struct Strings {
    pub window_title: &'static str,
    pub connecting: &'static str,
    pub code_intro: &'static str,
    pub copy_code: &'static str,
    pub copied: &'static str,
    /// The code stays valid for this many more seconds.
    pub code_valid_for: fn(u64) -> String,
    pub code_expired: &'static str,
    pub stop_sharing: &'static str,
    pub end_session: &'static str,
    pub technician: &'static str,
    pub verified: &'static str,
    pub not_verified: &'static str,
    /// Why a name is not verified: no credential...
    pub no_credential: &'static str,
    /// ...the console said nothing of one...
    pub console_silent: &'static str,
    /// ...or the one it showed does not hold (the check's own words follow).
    pub credential_refused: &'static str,
    pub verification_words: &'static str,
    pub words_hint: &'static str,
    pub view_title: &'static str,
    pub view_body: &'static str,
    pub run_title: &'static str,
    pub run_title_person: &'static str,
    pub risk: &'static str,
    pub risk_low: &'static str,
    pub risk_medium: &'static str,
    pub risk_high: &'static str,
    pub command: &'static str,
    /// The script stops by itself after this many seconds.
    pub stops_after: fn(u64) -> String,
    pub file_title: &'static str,
    pub allow: &'static str,
    pub deny: &'static str,
    /// Seconds left before no answer counts as no.
    pub countdown: fn(u64) -> String,
    pub read_first: &'static str,
    pub question_title: &'static str,
    pub your_answer: &'static str,
    pub send_answer: &'static str,
    pub do_not_answer: &'static str,
    pub history: &'static str,
    pub nothing_yet: &'static str,
    pub message_from: &'static str,
    pub you_allowed: &'static str,
    pub you_denied: &'static str,
    pub not_answered: &'static str,
    pub you_answered: &'static str,
    /// The question was taken back, for this reason (in English).
    pub withdrawn: fn(&str) -> String,
    pub viewing: &'static str,
    /// The catalog is signed by a trusted key and holds this many scripts.
    pub catalog_accepted: fn(usize) -> String,
    pub catalog_refused: &'static str,
    pub relay_lost: &'static str,
    pub relay_back: &'static str,
    /// The session's connection goes straight to the technician.
    pub path_direct: &'static str,
    /// The session's connection goes through the relay.
    pub path_relayed: &'static str,
    pub running: &'static str,
    pub finished: &'static str,
    pub stopped: &'static str,
    pub file_sent: fn(&str) -> String,
    pub file_not_sent: &'static str,
    pub wrong_code: &'static str,
    pub ended_title: &'static str,
    pub ended_by_you: &'static str,
    pub ended_by_technician: &'static str,
    pub ended_declined: &'static str,
    pub ended_stopped_sharing: &'static str,
    pub ended_lost: &'static str,
    pub ended_failed: &'static str,
    pub audit_head: &'static str,
    pub close: &'static str,
    // The check screen: the person checks their machine alone.
    pub check_title: &'static str,
    pub check_intro: &'static str,
    pub checking: &'static str,
    pub nothing_wrong: &'static str,
    pub severity_critical: &'static str,
    pub severity_warning: &'static str,
    pub severity_info: &'static str,
    /// The repair offered for a finding, by its (catalog) title.
    pub you_may_fix: fn(&str) -> String,
    pub fix: &'static str,
    pub check_again: &'static str,
    pub get_help: &'static str,
    pub get_help_hint: &'static str,
    pub no_repairs: &'static str,
    pub fixing: &'static str,
    /// The finding, by its title, is gone after the repair.
    pub fixed: fn(&str) -> String,
    /// The finding is still there after the repair.
    pub still_there: fn(&str) -> String,
    pub nothing_ran: &'static str,
    pub fix_failed: &'static str,
    pub check_failed: &'static str,
    pub cannot_share: &'static str,
}

impl Strings {
    /// How a technician's name stands, in these words: "verified by your
    /// organisation (until 2031-01-01)", "not verified (no credential)".
    /// A refused credential keeps the check's own (English) words after
    /// this language's.
    pub fn standing(&self, standing: &Standing) -> String {
        match standing {
            Standing::Verified { valid_until, .. } => format!("{} ({valid_until})", self.verified),
            Standing::NotVerified { reason } => {
                let why = match reason {
                    Unverified::NoCredential => self.no_credential.to_owned(),
                    Unverified::ConsoleSilent => self.console_silent.to_owned(),
                    Unverified::Refused(detail) => format!("{}: {detail}", self.credential_refused),
                };
                format!("{} ({why})", self.not_verified)
            }
        }
    }
}
