//! Why a catalog, a key or a parameter value was refused.
//!
//! Every message is one line: anything that came from outside (file names,
//! values, TOML text) is shown quoted with its control characters escaped and
//! long text shortened, so a hostile input cannot forge extra lines in a log or
//! on the person's screen.

use std::time::SystemTime;

use thiserror::Error;

use super::dates::format_time;

/// Longest piece of outside text quoted in an error message.
const MAX_SHOWN_CHARS: usize = 80;

/// Quotes outside text for an error message: Rust debug quoting escapes
/// newlines and other invisible characters, and long text is cut short.
pub(crate) fn shown(text: &str) -> String {
    if text.chars().count() <= MAX_SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(MAX_SHOWN_CHARS).collect();
        format!("{head:?}… ({} bytes)", text.len())
    }
}

/// What went wrong with a catalog, a key file, a signature or a parameter value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CatalogError {
    // What this machine is configured to trust.
    #[error(
        "no trusted catalog key is configured on this machine, so no scripts can run; \
         give the organisation's public key with --trusted-key FILE"
    )]
    NoTrustedKeys,

    // The signature and what it covers.
    #[error(
        "the catalog is not signed; sign it with `sprijin-console catalog sign DIR --key FILE` \
         and send it again"
    )]
    Unsigned,
    #[error(
        "the catalog signature is malformed: {reason}; sign the catalog again with \
         `sprijin-console catalog sign DIR --key FILE`"
    )]
    MalformedSignature { reason: String },
    #[error(
        "the catalog signature is in the format of an older version, which has no signing \
         time or expiry and is no longer accepted; sign the catalog again with this version: \
         `sprijin-console catalog sign DIR --key FILE`"
    )]
    LegacySignature,
    #[error(
        "the catalog is signed by key {key}, which this machine does not trust (it trusts \
         {trusted}); send a catalog signed with a key this machine trusts"
    )]
    UntrustedKey {
        /// Id of the key the signature names.
        key: String,
        /// Ids of the keys this machine trusts, comma-separated.
        trusted: String,
    },
    #[error(
        "the catalog signature by key {key} does not match its files: a file was changed, \
         added, removed or renamed after signing, or the signature file was edited; sign \
         the catalog again"
    )]
    SignatureMismatch {
        /// Id of the trusted key the signature names.
        key: String,
    },
    #[error(
        "the catalog expired on {} (signed on {} by key {key}); ask the organisation for a \
         newly signed catalog",
        format_time(*.expired),
        format_time(*.signed)
    )]
    Expired {
        expired: SystemTime,
        signed: SystemTime,
        key: String,
    },
    #[error(
        "the catalog was signed on {}, before the newest catalog this machine already \
         accepted from key {key}, signed on {}; an older catalog may hold withdrawn scripts, \
         so send the current catalog",
        format_time(*.signed),
        format_time(*.newest)
    )]
    Superseded {
        signed: SystemTime,
        newest: SystemTime,
        key: String,
    },

    // The expiry a signer asks for.
    #[error(
        "expiry {} is not valid: {reason}; give a date as YYYY-MM-DD or an RFC 3339 time \
         such as 2027-01-31T12:00:00Z",
        shown(.input)
    )]
    InvalidExpiry { input: String, reason: String },
    #[error(
        "expiry {} is in the past ({}, and it is now {}); give a later date",
        shown(.input),
        format_time(*.expires),
        format_time(*.now)
    )]
    ExpiryInPast {
        input: String,
        expires: SystemTime,
        now: SystemTime,
    },

    // The set of files.
    #[error("catalog file name {} is not allowed: {reason}; rename the file", shown(.name))]
    InvalidFileName { name: String, reason: &'static str },
    #[error("catalog file {} appears more than once; send each file once", shown(.name))]
    DuplicateFileName { name: String },
    #[error("the catalog has {count} files, more than the limit of {limit}; remove unused scripts")]
    TooManyFiles { count: usize, limit: usize },
    #[error(
        "catalog file {} is {size} bytes, more than the limit of {limit}; shorten it",
        shown(.name)
    )]
    FileTooLarge {
        name: String,
        size: usize,
        limit: usize,
    },

    // One script file.
    #[error(
        "catalog file {} is not valid TOML: {}{message}; fix the file and sign the catalog again",
        shown(.file),
        position(*.line, *.column)
    )]
    Toml {
        file: String,
        /// 1-based line and column of the problem, when TOML reports one.
        line: Option<usize>,
        column: Option<usize>,
        /// The TOML error message, folded onto one line.
        message: String,
    },
    #[error(
        "catalog file {} is not a valid script: {reason}; fix the file and sign the catalog again",
        shown(.file)
    )]
    InvalidScript { file: String, reason: String },
    #[error("script {script} is broken: {reason}; fix the catalog and sign it again")]
    BrokenScript { script: String, reason: String },
    #[error(
        "script id {} is used by both {} and {}; give each script its own id",
        shown(.id),
        shown(.first),
        shown(.second)
    )]
    DuplicateId {
        id: String,
        first: String,
        second: String,
    },
    #[error(
        "script id {} is not valid: use 1 to 64 lower-case letters, digits and '-', \
         starting with a letter or digit",
        shown(.id)
    )]
    InvalidScriptId { id: String },

    // Key files.
    #[error(
        "the {what} is malformed: {reason}; use a file written by `sprijin-console catalog keygen`"
    )]
    MalformedKey { what: &'static str, reason: String },

    // Parameter values a technician supplied for a run.
    #[error("script {script} has no parameter {}; its parameters are: {known}", shown(.param))]
    UnknownParam {
        script: String,
        param: String,
        /// The script's parameter names, comma-separated, or "none".
        known: String,
    },
    #[error("script {script} needs a value for parameter {param}; add {param}=VALUE")]
    MissingParam { script: String, param: String },
    #[error("parameter {param} of script {script} is given more than once; give it once")]
    DuplicateParam { script: String, param: String },
    #[error(
        "value {} for parameter {param} of script {script} is refused: {problem}",
        shown(.value)
    )]
    InvalidParamValue {
        script: String,
        param: String,
        value: String,
        problem: ValueProblem,
    },
    #[error("{} is not a parameter assignment; write NAME=VALUE", shown(.input))]
    MalformedAssignment { input: String },
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("line {line}, column {column}: "),
        (Some(line), None) => format!("line {line}: "),
        _ => String::new(),
    }
}

/// Why one parameter value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ValueProblem {
    #[error("it is empty; give a value")]
    Empty,
    #[error("it is {len} bytes, more than the limit of {limit}; give a shorter value")]
    TooLong { len: usize, limit: usize },
    #[error(
        "it contains the invisible or control character {}; values must be one line of \
         visible text",
        .0.escape_unicode()
    )]
    HiddenCharacter(char),
    #[error(
        "it starts with '-', which the program could read as an option; give a value \
         without a leading '-'"
    )]
    LeadingDash,
    #[error("it does not match the pattern {}; give a value that does", shown(.pattern))]
    NoMatch { pattern: String },
    #[error("it is not one of the allowed choices ({choices}); pick one of them")]
    NotAChoice {
        /// The allowed choices, quoted and comma-separated.
        choices: String,
    },
    #[error("the script's rule for it is broken ({reason}); fix the catalog and sign it again")]
    BrokenRule { reason: String },
}
