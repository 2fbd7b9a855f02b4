//! A script's parameters: what values each accepts ([`ParamSpec`]), the
//! checks every value passes whatever its parameter says ([`ParamValue`]),
//! and `NAME=VALUE` as a technician types it.

use std::collections::BTreeSet;
use std::fmt;

use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::error::{CatalogError, ValueProblem, shown};
use super::script::{MAX_DESCRIPTION_CHARS, check_text};

/// Most choices one parameter may list.
pub const MAX_CHOICES: usize = 64;
/// Longest parameter value, in bytes.
pub const MAX_VALUE_LEN: usize = 1024;
const MAX_PATTERN_LEN: usize = 1024;
/// Bounds the memory a compiled pattern may take, so a pathological pattern
/// is an error rather than a stall.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// What values one parameter accepts: exactly one of an anchored pattern
/// (`^...$`) or a list of choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    pub pattern: Option<String>,
    pub choices: Option<Vec<String>>,
    pub description: Option<String>,
    /// Where the value comes from when the person runs the script alone:
    /// the finding that names it. The pattern still checks the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ParamSource>,
}

/// Where a bound parameter's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamSource {
    /// The finding that names the script gives the value.
    Finding,
}

/// The checked form of a [`ParamSpec`].
pub(super) enum Rule<'a> {
    Pattern { source: &'a str, regex: Regex },
    Choices(&'a [String]),
}

impl ParamSpec {
    /// Checks the spec and compiles its pattern. Done again at every bind, so
    /// a hand-built [`Script`] cannot skip the checks `from_toml` makes.
    /// Whether no one types the value: a fixed choice, or one taken from
    /// the finding.
    pub fn is_bound(&self) -> bool {
        self.choices.is_some() || self.from.is_some()
    }

    pub(super) fn rule(&self) -> Result<Rule<'_>, String> {
        if let Some(description) = &self.description {
            check_text(description, "description", MAX_DESCRIPTION_CHARS, false)?;
        }
        match (&self.pattern, &self.choices) {
            (Some(_), Some(_)) => Err("has both pattern and choices; give exactly one".into()),
            (None, None) => Err("has neither pattern nor choices; give exactly one".into()),
            (Some(pattern), None) => Ok(Rule::Pattern {
                source: pattern,
                regex: compile_pattern(pattern)?,
            }),
            (None, Some(choices)) => {
                check_choices(choices)?;
                Ok(Rule::Choices(choices))
            }
        }
    }
}

fn compile_pattern(pattern: &str) -> Result<Regex, String> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "pattern is {} bytes, more than the limit of {MAX_PATTERN_LEN}",
            pattern.len()
        ));
    }
    if !pattern.starts_with('^') || !ends_with_unescaped_dollar(pattern) {
        return Err(format!(
            "pattern {} must be anchored: start with ^ and end with $",
            shown(pattern)
        ));
    }
    // The pattern must be a whole regular expression on its own. Otherwise
    // its text could close the group it is wrapped in below and open
    // another: `^a)|(?:b$` would become `\A(?:^a)|(?:b$)\z`, which accepts
    // anything that starts with `a`.
    build(pattern).map_err(|e| {
        format!(
            "pattern {} does not compile on its own: {}",
            shown(pattern),
            one_line(&e.to_string())
        )
    })?;
    // The anchors above are for the reader. Matching wraps the pattern again
    // so a top-level alternation like `^a|b$` still has to match the whole
    // value, and `(?m)` inside cannot loosen it.
    build(&format!(r"\A(?:{pattern})\z")).map_err(|e| {
        format!(
            "pattern {} does not compile: {}",
            shown(pattern),
            one_line(&e.to_string())
        )
    })
}

fn build(pattern: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn ends_with_unescaped_dollar(pattern: &str) -> bool {
    let Some(body) = pattern.strip_suffix('$') else {
        return false;
    };
    let backslashes = body.chars().rev().take_while(|&c| c == '\\').count();
    backslashes % 2 == 0
}

/// Regex syntax errors span several lines with a caret diagram; keep the line
/// that says what is wrong.
fn one_line(message: &str) -> String {
    message
        .lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| message.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn check_choices(choices: &[String]) -> Result<(), String> {
    if choices.is_empty() {
        return Err("choices is empty; list at least one".into());
    }
    if choices.len() > MAX_CHOICES {
        return Err(format!(
            "has {} choices, more than the limit of {MAX_CHOICES}",
            choices.len()
        ));
    }
    let mut seen = BTreeSet::new();
    for choice in choices {
        if let Err(problem) = ParamValue::parse(choice) {
            return Err(format!(
                "choice {} is not allowed: {problem}",
                shown(choice)
            ));
        }
        if !seen.insert(choice.as_str()) {
            return Err(format!("choice {} is listed twice", shown(choice)));
        }
    }
    Ok(())
}

/// A parameter value that is safe to show and to pass as (part of) one
/// argument: not empty, bounded, one line of visible text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParamValue(String);

impl ParamValue {
    /// Applies the checks every value must pass whatever its parameter's
    /// pattern says; the pattern or choice list is checked by [`Script::bind`].
    pub fn parse(value: &str) -> Result<ParamValue, ValueProblem> {
        if value.is_empty() {
            return Err(ValueProblem::Empty);
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(ValueProblem::TooLong {
                len: value.len(),
                limit: MAX_VALUE_LEN,
            });
        }
        if let Some(c) = value.chars().find(|&c| is_hidden(c)) {
            return Err(ValueProblem::HiddenCharacter(c));
        }
        Ok(ParamValue(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters that would let text look different from what it is on the
/// person's consent screen: control characters (newline, escape, NUL) and the
/// invisible formatting and bidirectional marks.
pub(super) fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}')
}

/// Splits `NAME=VALUE` as typed after `run ID`.
pub fn parse_assignment(input: &str) -> Result<(String, String), CatalogError> {
    match input.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(CatalogError::MalformedAssignment {
            input: input.to_owned(),
        }),
    }
}
