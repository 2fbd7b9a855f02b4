//! One catalog script: its TOML form, the checks that make it safe to offer,
//! and [`Script::bind`], which turns a technician's parameter values into the
//! exact argument vector the runner executes.
//!
//! A script is a program plus arguments. An argument may hold placeholders
//! like `{unit}` (write `{{` and `}}` for literal braces); each placeholder
//! names a declared parameter, and each parameter declares either an anchored
//! regular expression or a list of choices. Values are checked, then pasted
//! into the argument's text; no shell ever sees them, so quoting characters in
//! a value are just characters.
//!
//! What one parameter accepts, and the checks every value passes, are in
//! `param`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::{CatalogError, ValueProblem, shown};
use super::param::{ParamSpec, ParamValue, Rule, is_hidden};

/// Most arguments one script may have.
pub const MAX_ARGS: usize = 64;
/// Longest argument, in bytes, before or after substitution.
pub const MAX_ARG_LEN: usize = 4096;
/// Most parameters one script may declare.
pub const MAX_PARAMS: usize = 16;
/// Longest timeout a script may ask for: an hour.
pub const MAX_TIMEOUT_SECS: u64 = 3600;

const MAX_ID_LEN: usize = 64;
const MAX_PARAM_NAME_LEN: usize = 32;
const MAX_TITLE_CHARS: usize = 120;
pub(super) const MAX_DESCRIPTION_CHARS: usize = 2000;

/// A script's id, as in `run flush-dns`: 1 to 64 characters of `a-z`, `0-9`
/// and `-`, not starting with `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScriptId(String);

impl ScriptId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ScriptId {
    type Err = CatalogError;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        let mut chars = id.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if first_ok && rest_ok && id.len() <= MAX_ID_LEN {
            Ok(ScriptId(id.to_owned()))
        } else {
            Err(CatalogError::InvalidScriptId { id: id.to_owned() })
        }
    }
}

impl TryFrom<String> for ScriptId {
    type Error = CatalogError;

    fn try_from(id: String) -> Result<Self, Self::Error> {
        id.parse()
    }
}

impl From<ScriptId> for String {
    fn from(id: ScriptId) -> String {
        id.0
    }
}

impl fmt::Display for ScriptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How much harm a script can do if it is the wrong fix; shown to the person
/// before they approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    /// Reads state or clears something that rebuilds itself.
    Low,
    /// Changes the system in a way that is easy to undo or recovers by itself.
    Medium,
    /// Can lose work or interrupt the person.
    High,
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        })
    }
}

/// An operating system a script is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Linux,
    Macos,
    Windows,
}

impl Platform {
    /// The platform this program was built for, if scripts exist for it.
    pub fn current() -> Option<Platform> {
        if cfg!(target_os = "linux") {
            Some(Platform::Linux)
        } else if cfg!(target_os = "macos") {
            Some(Platform::Macos)
        } else if cfg!(target_os = "windows") {
            Some(Platform::Windows)
        } else {
            None
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Linux => "linux",
            Platform::Macos => "macos",
            Platform::Windows => "windows",
        })
    }
}

/// Renders a program and its arguments for a person to read: plain words
/// stay plain, anything else is quoted with its special characters escaped,
/// so what is shown is exactly what runs.
pub fn display_command(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|word| {
            let plain = !word.is_empty()
                && word.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '-' | '_' | '.' | '/' | ':' | '=' | '@' | '+' | ',')
                });
            if plain {
                word.to_owned()
            } else {
                format!("{word:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One script of the catalog, as checked by [`Script::from_toml`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Script {
    pub id: ScriptId,
    pub title: String,
    pub description: String,
    pub risk: Risk,
    pub platforms: Vec<Platform>,
    pub timeout_secs: u64,
    /// Run directly (looked up in `PATH` when not absolute), never by a shell.
    pub program: String,
    /// Argument templates; see [`Script::bind`].
    pub args: Vec<String>,
    pub params: BTreeMap<String, ParamSpec>,
    /// The person may run it alone, from a finding that names it. Only a
    /// low-risk script whose parameters are all bound (from the finding,
    /// or a fixed choice) may say so; the signature covers it like
    /// everything else.
    pub self_service: bool,
}

/// The TOML form, before the checks.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptToml {
    id: String,
    title: String,
    description: String,
    risk: Risk,
    platforms: Vec<Platform>,
    timeout_secs: u64,
    program: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    params: BTreeMap<String, ParamSpec>,
    #[serde(default)]
    self_service: bool,
}

/// A piece of an argument template.
enum Piece<'a> {
    Text(String),
    Param(&'a str),
}

impl Script {
    /// Parses and checks one catalog file. `file` is its name, used only in
    /// error messages.
    pub fn from_toml(file: &str, text: &str) -> Result<Script, CatalogError> {
        let raw: ScriptToml = toml::from_str(text).map_err(|e| toml_error(file, text, &e))?;
        let invalid = |reason: String| CatalogError::InvalidScript {
            file: file.to_owned(),
            reason,
        };
        let id = raw
            .id
            .parse::<ScriptId>()
            .map_err(|e| invalid(e.to_string()))?;
        let script = Script {
            id,
            title: raw.title,
            description: raw.description,
            risk: raw.risk,
            platforms: raw.platforms,
            timeout_secs: raw.timeout_secs,
            program: raw.program,
            args: raw.args,
            params: raw.params,
            self_service: raw.self_service,
        };
        script.check().map_err(invalid)?;
        Ok(script)
    }

    /// The limit on one run of this script.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Whether the script is written for `platform`.
    pub fn runs_on(&self, platform: Platform) -> bool {
        self.platforms.contains(&platform)
    }

    /// Every rule a script must follow to be offered; the reason is a phrase
    /// that completes "… is not a valid script: ".
    fn check(&self) -> Result<(), String> {
        check_text(&self.title, "title", MAX_TITLE_CHARS, false)?;
        check_text(
            &self.description,
            "description",
            MAX_DESCRIPTION_CHARS,
            true,
        )?;
        if self.platforms.is_empty() {
            return Err("platforms is empty; list at least one of linux, macos, windows".into());
        }
        let distinct: BTreeSet<_> = self.platforms.iter().collect();
        if distinct.len() != self.platforms.len() {
            return Err("platforms lists a platform twice".into());
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.timeout_secs) {
            return Err(format!(
                "timeout_secs is {}, it must be between 1 and {MAX_TIMEOUT_SECS}",
                self.timeout_secs
            ));
        }
        self.check_program()?;
        if self.args.len() > MAX_ARGS {
            return Err(format!(
                "it has {} args, more than the limit of {MAX_ARGS}",
                self.args.len()
            ));
        }
        if self.params.len() > MAX_PARAMS {
            return Err(format!(
                "it has {} params, more than the limit of {MAX_PARAMS}",
                self.params.len()
            ));
        }
        for (name, spec) in &self.params {
            if !is_param_name(name) {
                return Err(format!(
                    "parameter name {} is not valid: use 1 to {MAX_PARAM_NAME_LEN} lower-case \
                     letters, digits and '_', starting with a letter",
                    shown(name)
                ));
            }
            spec.rule()
                .map_err(|reason| format!("parameter {name} {reason}"))?;
        }
        let mut used = BTreeSet::new();
        for (index, arg) in self.args.iter().enumerate() {
            for piece in self.template(index, arg)? {
                if let Piece::Param(name) = piece {
                    used.insert(name);
                }
            }
        }
        if let Some(unused) = self
            .params
            .keys()
            .find(|name| !used.contains(name.as_str()))
        {
            return Err(format!(
                "parameter {unused} is declared but no argument uses {{{unused}}}; use it or remove it"
            ));
        }
        self.check_self_service()
    }

    /// A script the person may run alone is low-risk and takes no value
    /// typed by anyone: every parameter is a fixed choice or bound from
    /// the finding that names the script.
    fn check_self_service(&self) -> Result<(), String> {
        if !self.self_service {
            return Ok(());
        }
        if self.risk != Risk::Low {
            return Err(format!(
                "self_service is only for low-risk scripts, and this one is {} risk",
                self.risk
            ));
        }
        if let Some((name, _)) = self.params.iter().find(|(_, spec)| !spec.is_bound()) {
            return Err(format!(
                "self_service needs every parameter bound, and parameter {name} is free text: \
                 give it `from = \"finding\"` or choices"
            ));
        }
        Ok(())
    }

    fn check_program(&self) -> Result<(), String> {
        let program = &self.program;
        if program.trim().is_empty() {
            return Err("program is empty; name the program to run".into());
        }
        if program.len() > MAX_ARG_LEN {
            return Err(format!(
                "program is {} bytes, more than the limit of {MAX_ARG_LEN}",
                program.len()
            ));
        }
        if program.chars().any(is_hidden) {
            return Err(format!(
                "program {} contains a control or invisible character",
                shown(program)
            ));
        }
        if program.contains(['{', '}']) {
            return Err(format!(
                "program {} contains a brace; placeholders are only allowed in args",
                shown(program)
            ));
        }
        if program.starts_with('-') || program != program.trim() {
            return Err(format!(
                "program {} starts with '-' or has surrounding spaces",
                shown(program)
            ));
        }
        Ok(())
    }

    /// Splits argument `index` into text and placeholders, checking that each
    /// placeholder names a declared parameter.
    fn template<'a>(&self, index: usize, arg: &'a str) -> Result<Vec<Piece<'a>>, String> {
        let at = |what: String| format!("argument {} ({}) {what}", index + 1, shown(arg));
        if arg.len() > MAX_ARG_LEN {
            return Err(at(format!(
                "is longer than the limit of {MAX_ARG_LEN} bytes"
            )));
        }
        if arg.chars().any(is_hidden) {
            return Err(at("contains a control or invisible character".into()));
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = arg;
        while let Some(c) = rest.chars().next() {
            match c {
                '{' if rest.starts_with("{{") => {
                    text.push('{');
                    rest = &rest[2..];
                }
                '}' if rest.starts_with("}}") => {
                    text.push('}');
                    rest = &rest[2..];
                }
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return Err(at(
                            "has a '{' without a closing '}'; write {{ for a literal brace".into(),
                        ));
                    };
                    let name = &rest[1..end];
                    if !self.params.contains_key(name) {
                        return Err(at(format!(
                            "uses {} but no parameter of that name is declared under [params]",
                            shown(&rest[..=end])
                        )));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Param(name));
                    rest = &rest[end + 1..];
                }
                '}' => {
                    return Err(at(
                        "has a '}' without an opening '{'; write }} for a literal brace".into(),
                    ));
                }
                c => {
                    text.push(c);
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(pieces)
    }

    /// Checks the technician's values and returns the argument vector to run
    /// `program` with (the program itself is not included).
    ///
    /// Every declared parameter needs exactly one value; unknown names are
    /// refused. A value must be one line of visible text, not empty, and match
    /// its parameter's pattern (and then not start with `-`) or be one of its
    /// choices exactly. Values only ever become text inside an argument.
    pub fn bind(&self, values: &[(String, String)]) -> Result<Vec<String>, CatalogError> {
        let script = self.id.to_string();
        let broken = |reason: String| CatalogError::BrokenScript {
            script: script.clone(),
            reason,
        };
        let mut bound: BTreeMap<&str, ParamValue> = BTreeMap::new();
        for (name, value) in values {
            let Some((declared, spec)) = self.params.get_key_value(name) else {
                return Err(CatalogError::UnknownParam {
                    script,
                    param: name.clone(),
                    known: self.param_names(),
                });
            };
            if bound.contains_key(name.as_str()) {
                return Err(CatalogError::DuplicateParam {
                    script,
                    param: name.clone(),
                });
            }
            let refuse = |problem: ValueProblem| CatalogError::InvalidParamValue {
                script: script.clone(),
                param: name.clone(),
                value: value.clone(),
                problem,
            };
            let checked = ParamValue::parse(value).map_err(refuse)?;
            match spec.rule() {
                Err(reason) => return Err(refuse(ValueProblem::BrokenRule { reason })),
                Ok(Rule::Pattern { source, regex }) => {
                    if !regex.is_match(checked.as_str()) {
                        return Err(refuse(ValueProblem::NoMatch {
                            pattern: source.to_owned(),
                        }));
                    }
                    // Patterns are often looser than their author meant;
                    // a leading '-' would turn a value into an option.
                    if checked.as_str().starts_with('-') {
                        return Err(refuse(ValueProblem::LeadingDash));
                    }
                }
                Ok(Rule::Choices(choices)) => {
                    if !choices.iter().any(|c| c == checked.as_str()) {
                        return Err(refuse(ValueProblem::NotAChoice {
                            choices: choices
                                .iter()
                                .map(|c| shown(c))
                                .collect::<Vec<_>>()
                                .join(", "),
                        }));
                    }
                }
            }
            bound.insert(declared.as_str(), checked);
        }
        if let Some(missing) = self
            .params
            .keys()
            .find(|name| !bound.contains_key(name.as_str()))
        {
            return Err(CatalogError::MissingParam {
                script,
                param: missing.clone(),
            });
        }
        self.check_program().map_err(broken)?;
        if self.args.len() > MAX_ARGS {
            return Err(broken(format!("it has more than {MAX_ARGS} args")));
        }
        let mut argv = Vec::with_capacity(self.args.len());
        for (index, arg) in self.args.iter().enumerate() {
            let mut out = String::new();
            for piece in self.template(index, arg).map_err(broken)? {
                match piece {
                    Piece::Text(text) => out.push_str(&text),
                    // The template check above proved every name is declared,
                    // and every declared name is bound by now.
                    Piece::Param(name) => match bound.get(name) {
                        Some(value) => out.push_str(value.as_str()),
                        None => {
                            return Err(CatalogError::MissingParam {
                                script,
                                param: name.to_owned(),
                            });
                        }
                    },
                }
            }
            if out.len() > MAX_ARG_LEN {
                return Err(CatalogError::BrokenScript {
                    script,
                    reason: format!(
                        "argument {} would be {} bytes with these values, more than the limit of {MAX_ARG_LEN}",
                        index + 1,
                        out.len()
                    ),
                });
            }
            argv.push(out);
        }
        Ok(argv)
    }

    fn param_names(&self) -> String {
        if self.params.is_empty() {
            "none".to_owned()
        } else {
            self.params.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

fn is_param_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_PARAM_NAME_LEN
}

/// Title and description are shown on the consent screen, so they must not
/// hide anything; a description may span lines.
pub(super) fn check_text(
    text: &str,
    field: &str,
    max_chars: usize,
    multi_line: bool,
) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("{field} is empty; say what the script does"));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(format!(
            "{field} is {chars} characters, more than the limit of {max_chars}"
        ));
    }
    let allowed = |c: char| multi_line && (c == '\n' || c == '\t');
    if let Some(c) = text.chars().find(|&c| is_hidden(c) && !allowed(c)) {
        return Err(format!(
            "{field} contains the control or invisible character {}",
            c.escape_unicode()
        ));
    }
    Ok(())
}

/// Folds a TOML error onto one line with its position.
fn toml_error(file: &str, text: &str, error: &toml::de::Error) -> CatalogError {
    let (line, column) = match error.span().and_then(|span| text.get(..span.start)) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit('\n')
                .next()
                .map_or(0, |last| last.chars().count())
                + 1;
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    CatalogError::Toml {
        file: file.to_owned(),
        line,
        column,
        message: error
            .message()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::param::{MAX_VALUE_LEN, parse_assignment};

    const FLUSH_DNS: &str = r#"
id = "flush-dns"
title = "Flush the DNS cache"
description = "Clears cached name lookups. Safe; takes a second."
risk = "low"                  # low | medium | high
platforms = ["linux"]         # linux | macos | windows
timeout_secs = 30
program = "resolvectl"
args = ["flush-caches"]
"#;

    const RESTART_UNIT: &str = r#"
id = "restart-unit"
title = "Restart a service"
description = "Restarts one systemd unit."
risk = "medium"
platforms = ["linux"]
timeout_secs = 60
program = "systemctl"
args = ["restart", "{unit}"]

[params.unit]
pattern = "^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$"
description = "unit name, e.g. cups.service"
"#;

    const VACUUM: &str = r#"
id = "journal-vacuum"
title = "Shrink the journal"
description = "Deletes old journal files."
risk = "medium"
platforms = ["linux"]
timeout_secs = 120
program = "journalctl"
args = ["--vacuum-size={size}"]

[params.size]
pattern = "^[0-9]{1,4}[KMG]$"
"#;

    const CLEAR_CACHE: &str = r#"
id = "clear-user-cache"
title = "Clear old cache files"
description = "Deletes old files in a cache folder."
risk = "medium"
platforms = ["linux"]
timeout_secs = 300
program = "find"
args = ["{dir}", "-type", "f", "-mtime", "+{days}", "-delete"]

[params.dir]
pattern = '^/(home/[a-z_][a-z0-9_-]{0,31}|root)/\.cache(/(\.?[A-Za-z0-9_@+-])+)*$'

[params.days]
pattern = "^[0-9]{1,3}$"
"#;

    fn parse(text: &str) -> Result<Script, CatalogError> {
        Script::from_toml("test.toml", text)
    }

    fn values(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn invalid_reason(text: &str) -> String {
        match parse(text) {
            Err(CatalogError::InvalidScript { reason, .. }) => reason,
            other => panic!("expected an invalid script, got {other:?}"),
        }
    }

    #[test]
    fn self_service_is_for_low_risk_scripts_with_bound_parameters_only() {
        let own = format!("{FLUSH_DNS}self_service = true\n");
        assert!(parse(&own).unwrap().self_service);
        assert!(!parse(FLUSH_DNS).unwrap().self_service);

        let risky = RESTART_UNIT.replace(
            "risk = \"medium\"",
            "risk = \"medium\"\nself_service = true",
        );
        assert_eq!(
            invalid_reason(&risky),
            "self_service is only for low-risk scripts, and this one is medium risk"
        );

        let free = VACUUM.replace("risk = \"medium\"", "risk = \"low\"\nself_service = true");
        assert_eq!(
            invalid_reason(&free),
            "self_service needs every parameter bound, and parameter size is free text: give it `from = \"finding\"` or choices"
        );
        let bound = format!("{free}from = \"finding\"\n");
        let script = parse(&bound).unwrap();
        assert!(script.params["size"].is_bound());
        // A bound value is still checked by the pattern.
        assert!(script.bind(&values(&[("size", "500M")])).is_ok());
        refused(&script, &[("size", "-rf")]);

        let chosen = VACUUM
            .replace("risk = \"medium\"", "risk = \"low\"\nself_service = true")
            .replace(
                "pattern = \"^[0-9]{1,4}[KMG]$\"",
                "choices = [\"500M\", \"1G\"]",
            );
        assert!(parse(&chosen).unwrap().self_service);
        assert!(matches!(
            parse(&format!("{FLUSH_DNS}self_service = \"yes\"\n")),
            Err(CatalogError::Toml { .. })
        ));
    }

    fn refused(script: &Script, pairs: &[(&str, &str)]) -> CatalogError {
        let err = script.bind(&values(pairs)).unwrap_err();
        let message = err.to_string();
        assert!(!message.contains('\n'), "not one line: {message}");
        err
    }

    fn value_problem(script: &Script, pairs: &[(&str, &str)]) -> ValueProblem {
        match refused(script, pairs) {
            CatalogError::InvalidParamValue { problem, .. } => problem,
            other => panic!("expected a refused value, got {other:?}"),
        }
    }

    #[test]
    fn design_example_parses() {
        let script = parse(FLUSH_DNS).unwrap();
        assert_eq!(script.id.as_str(), "flush-dns");
        assert_eq!(script.risk, Risk::Low);
        assert_eq!(script.platforms, vec![Platform::Linux]);
        assert_eq!(script.timeout(), Duration::from_secs(30));
        assert!(script.runs_on(Platform::Linux));
        assert!(!script.runs_on(Platform::Windows));
        assert_eq!(script.bind(&[]).unwrap(), vec!["flush-caches"]);
    }

    #[test]
    fn script_ids_follow_the_rule() {
        for good in ["a", "flush-dns", "0day", "a-", &"a".repeat(64)] {
            assert!(good.parse::<ScriptId>().is_ok(), "{good}");
        }
        for bad in ["", "-a", "Flush", "a_b", "a b", "ä", &"a".repeat(65), "a\n"] {
            let err = bad.parse::<ScriptId>().unwrap_err();
            assert!(matches!(err, CatalogError::InvalidScriptId { .. }), "{bad}");
        }
        let bad_id = FLUSH_DNS.replace("\"flush-dns\"", "\"Flush DNS\"");
        assert!(invalid_reason(&bad_id).contains("\"Flush DNS\""));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let top = format!("{FLUSH_DNS}\nshell = true\n");
        let err = parse(&top).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, CatalogError::Toml { .. }));
        assert!(message.contains("unknown field `shell`"), "{message}");
        assert!(message.contains("\"test.toml\""), "{message}");
        assert!(!message.contains('\n'), "{message}");

        let nested = format!("{RESTART_UNIT}default = \"cups\"\n");
        let message = parse(&nested).unwrap_err().to_string();
        assert!(message.contains("unknown field `default`"), "{message}");
    }

    #[test]
    fn toml_errors_name_the_file_and_line_on_one_line() {
        let err = Script::from_toml("broken.toml", "id = \"x\"\ntitle = \n").unwrap_err();
        let CatalogError::Toml { ref file, line, .. } = err else {
            panic!("{err:?}");
        };
        assert_eq!(file, "broken.toml");
        assert_eq!(line, Some(2));
        let message = err.to_string();
        assert!(
            message.starts_with("catalog file \"broken.toml\" is not valid TOML: line 2"),
            "{message}"
        );
        assert!(!message.contains('\n'));

        let risk = FLUSH_DNS.replace("\"low\"", "\"critical\"");
        let message = parse(&risk).unwrap_err().to_string();
        assert!(message.contains("critical"), "{message}");
        assert!(message.contains("line 5"), "{message}");
    }

    #[test]
    fn timeout_must_be_between_one_second_and_an_hour() {
        for ok in ["1", "3600"] {
            assert!(parse(&FLUSH_DNS.replace("= 30", &format!("= {ok}"))).is_ok());
        }
        for bad in ["0", "3601"] {
            let reason = invalid_reason(&FLUSH_DNS.replace("= 30", &format!("= {bad}")));
            assert!(reason.contains("timeout_secs"), "{reason}");
        }
        assert!(matches!(
            parse(&FLUSH_DNS.replace("= 30", "= -1")),
            Err(CatalogError::Toml { .. })
        ));
    }

    #[test]
    fn program_must_be_a_plain_name() {
        for bad in ["\"\"", "\"  \"", "\"-rf\"", "\"{prog}\"", "\"a\\u001bb\""] {
            let text = FLUSH_DNS.replace("\"resolvectl\"", bad);
            let reason = invalid_reason(&text);
            assert!(reason.contains("program"), "{bad}: {reason}");
        }
    }

    #[test]
    fn title_and_description_must_not_hide_text() {
        let escape = FLUSH_DNS.replace("Flush the DNS cache", "Flush\\u001b[2J");
        assert!(invalid_reason(&escape).contains("title"));
        let bidi = FLUSH_DNS.replace("Clears", "\\u202EClears");
        assert!(invalid_reason(&bidi).contains("description"));
        let empty = FLUSH_DNS.replace("Flush the DNS cache", " ");
        assert!(invalid_reason(&empty).contains("title is empty"));
        let lines = FLUSH_DNS.replace("Clears cached", "Clears\\ncached");
        assert!(parse(&lines).is_ok(), "a description may span lines");
    }

    #[test]
    fn platforms_must_be_listed_once() {
        assert!(invalid_reason(&FLUSH_DNS.replace("[\"linux\"]", "[]")).contains("platforms"));
        assert!(
            invalid_reason(&FLUSH_DNS.replace("[\"linux\"]", "[\"linux\", \"linux\"]"))
                .contains("twice")
        );
        assert!(matches!(
            parse(&FLUSH_DNS.replace("[\"linux\"]", "[\"beos\"]")),
            Err(CatalogError::Toml { .. })
        ));
    }

    #[test]
    fn every_placeholder_needs_a_param_and_every_param_a_placeholder() {
        let undeclared = FLUSH_DNS.replace("[\"flush-caches\"]", "[\"{what}\"]");
        let reason = invalid_reason(&undeclared);
        assert!(
            reason.contains("{what}") && reason.contains("[params]"),
            "{reason}"
        );

        let unused = RESTART_UNIT.replace("\"{unit}\"", "\"cups\"");
        let reason = invalid_reason(&unused);
        assert!(
            reason.contains("parameter unit is declared but no argument uses {unit}"),
            "{reason}"
        );
    }

    #[test]
    fn braces_must_be_balanced_or_doubled() {
        let literal = FLUSH_DNS.replace("[\"flush-caches\"]", "[\"{{}}\", \"a{{b}}\"]");
        assert_eq!(
            parse(&literal).unwrap().bind(&[]).unwrap(),
            vec!["{}", "a{b}"]
        );
        for bad in ["[\"{\"]", "[\"}\"]", "[\"a{b\"]", "[\"{}\"]"] {
            let reason = invalid_reason(&FLUSH_DNS.replace("[\"flush-caches\"]", bad));
            assert!(reason.contains("argument 1"), "{bad}: {reason}");
        }
    }

    #[test]
    fn param_specs_are_checked() {
        let both = RESTART_UNIT.replace(
            "description = \"unit",
            "choices = [\"a\"]\ndescription = \"unit",
        );
        assert!(invalid_reason(&both).contains("both pattern and choices"));
        let neither =
            RESTART_UNIT.replace("pattern = \"^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$\"\n", "");
        assert!(invalid_reason(&neither).contains("neither pattern nor choices"));
        let unanchored = RESTART_UNIT.replace("{0,127}$\"", "{0,127}\"");
        assert!(invalid_reason(&unanchored).contains("anchored"));
        let escaped_dollar = RESTART_UNIT.replace("{0,127}$\"", "{0,127}\\\\$\"");
        assert!(invalid_reason(&escaped_dollar).contains("anchored"));
        let broken = RESTART_UNIT.replace("[A-Za-z0-9_]", "[z-a]");
        let reason = invalid_reason(&broken);
        assert!(
            reason.contains("does not compile") && !reason.contains('\n'),
            "{reason}"
        );
        let empty_choices = RESTART_UNIT.replace(
            "pattern = \"^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$\"",
            "choices = []",
        );
        assert!(invalid_reason(&empty_choices).contains("choices is empty"));
        let twice = RESTART_UNIT.replace(
            "pattern = \"^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$\"",
            "choices = [\"a\", \"a\"]",
        );
        assert!(invalid_reason(&twice).contains("listed twice"));
        let newline_choice = RESTART_UNIT.replace(
            "pattern = \"^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$\"",
            "choices = [\"a\\nb\"]",
        );
        assert!(invalid_reason(&newline_choice).contains("choice"));
        let bad_name = RESTART_UNIT
            .replace("{unit}", "{Unit}")
            .replace("params.unit", "params.Unit");
        assert!(invalid_reason(&bad_name).contains("parameter name \"Unit\""));
    }

    #[test]
    fn bind_substitutes_whole_arguments_and_inside_text() {
        let unit = parse(RESTART_UNIT).unwrap();
        assert_eq!(
            unit.bind(&values(&[("unit", "cups.service")])).unwrap(),
            vec!["restart", "cups.service"]
        );
        let vacuum = parse(VACUUM).unwrap();
        assert_eq!(
            vacuum.bind(&values(&[("size", "500M")])).unwrap(),
            vec!["--vacuum-size=500M"]
        );
        let cache = parse(CLEAR_CACHE).unwrap();
        assert_eq!(
            cache
                .bind(&values(&[
                    ("days", "30"),
                    ("dir", "/home/ana/.cache/thumbnails")
                ]))
                .unwrap(),
            vec![
                "/home/ana/.cache/thumbnails",
                "-type",
                "f",
                "-mtime",
                "+30",
                "-delete"
            ]
        );
    }

    #[test]
    fn bind_refuses_shell_tricks_and_traversal() {
        let unit = parse(RESTART_UNIT).unwrap();
        for hostile in ["a; rm -rf /", "$(id)", "`id`", "a b", "a|b", "a>b", "*"] {
            assert!(
                matches!(
                    value_problem(&unit, &[("unit", hostile)]),
                    ValueProblem::NoMatch { .. }
                ),
                "{hostile}"
            );
        }
        let message = refused(&unit, &[("unit", "a; rm -rf /")]).to_string();
        assert!(message.contains("\"a; rm -rf /\""), "{message}");
        assert!(
            message.contains("parameter unit of script restart-unit"),
            "{message}"
        );

        let cache = parse(CLEAR_CACHE).unwrap();
        for path in [
            "../etc",
            "/home/ana/.cache/../../../etc",
            "/home/ana/.cache/..",
            "/etc",
            "/home/ana",
            "/home/ana/.cache2",
            "/home/ana/.cache/",
        ] {
            assert!(
                matches!(
                    value_problem(&cache, &[("dir", path), ("days", "1")]),
                    ValueProblem::NoMatch { .. }
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn bind_refuses_control_characters_whatever_the_pattern() {
        let loose = RESTART_UNIT.replace("^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$", "^(?s:.+)$");
        let loose = parse(&loose).unwrap();
        for hidden in [
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{1b}[2Jb",
            "a\u{202E}b",
            "\u{200B}",
        ] {
            assert!(
                matches!(
                    value_problem(&loose, &[("unit", hidden)]),
                    ValueProblem::HiddenCharacter(_)
                ),
                "{hidden:?}"
            );
        }
        let message = refused(&loose, &[("unit", "a\nb")]).to_string();
        assert!(message.contains("\"a\\nb\""), "{message}");
        assert!(message.contains("\\u{a}"), "{message}");
    }

    #[test]
    fn bind_refuses_empty_long_and_dashed_values() {
        let loose =
            parse(&RESTART_UNIT.replace("^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$", "^.*$")).unwrap();
        assert_eq!(value_problem(&loose, &[("unit", "")]), ValueProblem::Empty);
        assert!(matches!(
            value_problem(&loose, &[("unit", &"a".repeat(MAX_VALUE_LEN + 1))]),
            ValueProblem::TooLong { .. }
        ));
        assert_eq!(
            value_problem(&loose, &[("unit", "--force")]),
            ValueProblem::LeadingDash
        );
        let long = refused(&loose, &[("unit", &"a".repeat(MAX_VALUE_LEN + 1))]).to_string();
        assert!(
            long.len() < 400,
            "long values are cut short in messages: {long}"
        );
    }

    #[test]
    fn bind_names_unknown_missing_and_repeated_parameters() {
        let unit = parse(RESTART_UNIT).unwrap();
        let err = refused(&unit, &[("unit", "cups"), ("user", "root")]);
        assert_eq!(
            err.to_string(),
            "script restart-unit has no parameter \"user\"; its parameters are: unit"
        );
        let err = refused(&unit, &[]);
        assert_eq!(
            err.to_string(),
            "script restart-unit needs a value for parameter unit; add unit=VALUE"
        );
        let err = refused(&unit, &[("unit", "cups"), ("unit", "ssh")]);
        assert!(matches!(err, CatalogError::DuplicateParam { .. }));
        let flush = parse(FLUSH_DNS).unwrap();
        let err = refused(&flush, &[("x", "1")]);
        assert!(err.to_string().ends_with("its parameters are: none"));
    }

    #[test]
    fn bind_checks_choices_exactly() {
        let text = RESTART_UNIT.replace(
            "pattern = \"^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$\"",
            "choices = [\"cups.service\", \"-x\"]",
        );
        let script = parse(&text).unwrap();
        assert_eq!(
            script.bind(&values(&[("unit", "cups.service")])).unwrap(),
            vec!["restart", "cups.service"]
        );
        // A signed choice list is exact, so even a dashed choice is allowed.
        assert_eq!(
            script.bind(&values(&[("unit", "-x")])).unwrap(),
            vec!["restart", "-x"]
        );
        assert!(matches!(
            value_problem(&script, &[("unit", "cups")]),
            ValueProblem::NotAChoice { .. }
        ));
        assert!(matches!(
            value_problem(&script, &[("unit", "cups.service ")]),
            ValueProblem::NotAChoice { .. }
        ));
    }

    #[test]
    fn patterns_match_the_whole_value_even_with_alternation() {
        let text = RESTART_UNIT.replace("^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$", "^a|b$");
        let script = parse(&text).unwrap();
        assert!(script.bind(&values(&[("unit", "a")])).is_ok());
        assert!(script.bind(&values(&[("unit", "b")])).is_ok());
        for sneaky in ["ab", "xb", "a; id", "id; b"] {
            assert!(
                script.bind(&values(&[("unit", sneaky)])).is_err(),
                "{sneaky}"
            );
        }
        let multi = RESTART_UNIT.replace("^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$", "(?m)^a$");
        assert!(invalid_reason(&multi).contains("anchored"));
    }

    #[test]
    fn a_pattern_cannot_close_its_anchoring_group() {
        // Wrapped as it is, `\A(?:^a)|(?:b$)\z` would accept any value that
        // starts with `a`; on its own the pattern does not compile.
        let escape = r"^a)|(?:b$";
        let text = RESTART_UNIT.replace("^[A-Za-z0-9_][A-Za-z0-9@._:-]{0,127}$", escape);
        let reason = invalid_reason(&text);
        assert!(
            reason.contains(r#"pattern "^a)|(?:b$" does not compile on its own"#),
            "{reason}"
        );
        assert!(!reason.contains('\n'), "{reason}");

        // A hand-built script with that pattern binds nothing either.
        let mut script = parse(RESTART_UNIT).unwrap();
        if let Some(spec) = script.params.get_mut("unit") {
            spec.pattern = Some(escape.into());
        }
        for value in ["a", "a; reboot", "abc"] {
            assert!(
                matches!(
                    value_problem(&script, &[("unit", value)]),
                    ValueProblem::BrokenRule { .. }
                ),
                "{value}"
            );
        }
    }

    #[test]
    fn bind_rechecks_a_hand_built_script() {
        let mut script = parse(RESTART_UNIT).unwrap();
        if let Some(spec) = script.params.get_mut("unit") {
            spec.pattern = Some("[a-z]+".into());
        }
        assert!(matches!(
            value_problem(&script, &[("unit", "cups; id")]),
            ValueProblem::BrokenRule { .. }
        ));
        let mut script = parse(RESTART_UNIT).unwrap();
        script.args.push("{other}".into());
        assert!(matches!(
            refused(&script, &[("unit", "cups")]),
            CatalogError::BrokenScript { .. }
        ));
    }

    #[test]
    fn script_without_args_or_params_parses() {
        let text = FLUSH_DNS
            .replace("args = [\"flush-caches\"]", "")
            .replace("resolvectl", "true");
        let script = parse(&text).unwrap();
        assert!(script.args.is_empty());
        assert_eq!(script.bind(&[]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn assignments_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_assignment("size=1=2").unwrap(),
            ("size".to_string(), "1=2".to_string())
        );
        assert_eq!(
            parse_assignment("a=").unwrap(),
            ("a".to_string(), String::new())
        );
        assert!(parse_assignment("=x").is_err());
        assert!(parse_assignment("nothing").is_err());
    }

    #[test]
    fn commands_are_shown_exactly() {
        let args = vec![
            "restart".to_string(),
            "a b".to_string(),
            "x\ny".to_string(),
            String::new(),
        ];
        assert_eq!(
            display_command("systemctl", &args),
            r#"systemctl restart "a b" "x\ny" """#
        );
    }

    #[test]
    fn no_input_makes_parsing_or_binding_panic() {
        // Every prefix of a valid file, and every byte replaced by a few
        // troublesome ones, must give a result rather than a panic.
        for text in [FLUSH_DNS, RESTART_UNIT, CLEAR_CACHE] {
            for (i, _) in text.char_indices() {
                let _ = parse(&text[..i]);
                for odd in ["{", "}", "\"", "\n", "'", "\u{0}", "é"] {
                    let mut mutated = text.to_string();
                    mutated.replace_range(
                        i..i + text[i..].chars().next().map_or(0, char::len_utf8),
                        odd,
                    );
                    if let Ok(script) = parse(&mutated) {
                        let _ = script.bind(&values(&[
                            ("unit", "x"),
                            ("dir", "/root/.cache"),
                            ("days", "1"),
                        ]));
                    }
                }
            }
        }
    }
}
