//! Likely secrets hidden in process command lines before they leave the
//! machine.
//!
//! A diagnostics snapshot lists the busiest processes with their command
//! lines, and programs are often started with a password or a token on the
//! command line. The technician needs to see which program runs and how,
//! not its secrets, so [`command_line`] joins a process's arguments and
//! replaces each likely secret value with [`MARK`]:
//!
//! - the value after a secret-named flag, as the next argument
//!   (`--password hunter2`) or joined to it (`--password=hunter2`);
//! - a secret-named assignment anywhere in an argument (`password=...`,
//!   `PGPASSWORD=...`, `?token=...&`, `Password=...;` in a connection
//!   string), up to the next `&`, `;` or the end of the word;
//! - the password of a URL (`postgres://ana:hunter2@db/`);
//! - the credentials of an `Authorization:` header, the value of another
//!   secret-named header (`X-Api-Key: ...`) and a `Bearer` token;
//! - `-pVALUE` after a MySQL or MariaDB client, and `-p VALUE` after
//!   `sshpass`, the programs whose `-p` is a password. Elsewhere `-p` means
//!   a port, a PID or "parents" far more often, so it is left alone.
//!
//! A name is secret-named when, ignoring case and leading dashes, it
//! contains `password`, `passwd`, `passphrase`, `secret`, `token`,
//! `apikey`/`api-key`/`api_key`, `credential`, `private-key`/`private_key`
//! or `access-key`/`access_key`, or one of its parts (split at `-`, `_`
//! and `.`) is `pass`, `pwd`, `pw`, `auth` or `authorization`. Hiding a
//! harmless value now and then (a `--token-file` path) is the price of not
//! missing a real one.
//!
//! Arguments are also split at spaces, so a secret inside a shell command
//! passed as one argument (`sh -c "mysql --password hunter2"`) is found too;
//! a quoted value is hidden up to its closing quote.

/// What a hidden value is shown as.
pub const MARK: &str = "***";

/// Parts of names that mark them as secret wherever they appear.
const SECRET_WORDS: [&str; 14] = [
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "api-key",
    "api_key",
    "credential",
    "private-key",
    "private_key",
    "access-key",
    "access_key",
    "authorization",
];

/// Whole parts of names that mark them as secret (`--pass`, `db_pwd`).
const SECRET_PARTS: [&str; 5] = ["pass", "pwd", "pw", "auth", "authorization"];

/// Programs whose `-pVALUE` is a password.
const P_IS_PASSWORD: [&str; 10] = [
    "mysql",
    "mysqldump",
    "mysqladmin",
    "mysqlimport",
    "mysqlcheck",
    "mysqlshow",
    "mariadb",
    "mariadb-dump",
    "mariadb-admin",
    "sshpass",
];

/// True when a flag or variable name says its value is a secret.
pub fn is_secret_name(name: &str) -> bool {
    let name = name.trim_start_matches('-').to_ascii_lowercase();
    if name.is_empty() {
        return false;
    }
    SECRET_WORDS.iter().any(|w| name.contains(w))
        || name
            .split(['-', '_', '.'])
            .any(|part| SECRET_PARTS.contains(&part))
}

/// A character that can be part of a flag or variable name.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn is_quote(c: char) -> bool {
    c == '"' || c == '\''
}

/// What the scan remembers from one word to the next.
#[derive(Default)]
struct Scan {
    /// The next value (argument or word) is a secret.
    secret_next: bool,
    /// Inside a hidden quoted value: words are dropped up to this quote.
    hide_until: Option<char>,
    /// The last word was an `Authorization:` header name.
    after_authorization: bool,
    /// A program whose `-p` is a password was seen, and which one.
    p_program: Option<&'static str>,
}

/// The process's arguments joined by spaces, with likely secrets replaced
/// by [`MARK`].
pub fn command_line<S: AsRef<str>>(args: &[S]) -> String {
    let mut scan = Scan::default();
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    for arg in args {
        let arg = arg.as_ref();
        if scan.secret_next && scan.hide_until.is_none() {
            // A whole argument is one value, spaces and all.
            scan.secret_next = false;
            out.push(MARK.to_string());
            continue;
        }
        if let Some(flag) = secret_assignment(arg) {
            out.push(format!("{flag}={MARK}"));
            continue;
        }
        out.push(scan.words(arg));
    }
    out.join(" ")
}

/// `--password` of `--password=VALUE`, when a whole argument is a
/// secret-named flag with its value: the value is the rest of the argument,
/// spaces and all. (`NAME=VALUE` without dashes is more often a shell
/// assignment before a command, so it is judged word by word.)
fn secret_assignment(arg: &str) -> Option<&str> {
    let (name, _) = arg.split_once('=')?;
    let bare = name.strip_prefix('-')?.trim_start_matches('-');
    (!bare.is_empty() && bare.chars().all(is_name_char) && is_secret_name(bare)).then_some(name)
}

impl Scan {
    /// One argument, word by word, keeping the spaces between words.
    fn words(&mut self, arg: &str) -> String {
        let mut out = String::with_capacity(arg.len());
        let mut rest = arg;
        while !rest.is_empty() {
            let space = rest.len() - rest.trim_start().len();
            if self.hide_until.is_none() {
                out.push_str(&rest[..space]);
            }
            rest = &rest[space..];
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (word, after) = rest.split_at(end);
            if !word.is_empty() {
                self.word(word, &mut out);
            }
            rest = after;
        }
        out
    }

    fn word(&mut self, word: &str, out: &mut String) {
        if let Some(quote) = self.hide_until {
            // Still inside a hidden quoted value: drop up to its end.
            if let Some(i) = word.find(quote) {
                self.hide_until = None;
                out.push_str(&word[i + 1..]);
            }
            return;
        }
        let core = word.trim_start_matches(is_quote);
        let lead = &word[..word.len() - core.len()];
        if std::mem::take(&mut self.secret_next) {
            out.push_str(&hide_value(word, self));
            return;
        }
        if std::mem::take(&mut self.after_authorization) {
            if core.chars().all(|c| c.is_ascii_alphabetic()) && !core.is_empty() {
                // The scheme (`Bearer`, `Basic`); the credentials follow.
                self.secret_next = true;
                out.push_str(word);
            } else {
                out.push_str(&hide_value(word, self));
            }
            return;
        }
        let lower = core.to_ascii_lowercase();
        if lower.ends_with("authorization:") {
            self.after_authorization = true;
            out.push_str(word);
            return;
        }
        if let Some(name) = core.strip_suffix(':')
            && name.chars().all(is_name_char)
            && is_secret_name(name)
        {
            // A header such as `X-Api-Key: VALUE`.
            self.secret_next = true;
            out.push_str(word);
            return;
        }
        if lower == "bearer" {
            self.secret_next = true;
            out.push_str(word);
            return;
        }
        let program = core.rsplit('/').next().unwrap_or(core);
        if let Some(p) = P_IS_PASSWORD.iter().find(|p| **p == program) {
            self.p_program = Some(*p);
            out.push_str(word);
            return;
        }
        if core.starts_with('-') && is_secret_name(core) && core.chars().all(is_name_char) {
            self.secret_next = true;
            out.push_str(word);
            return;
        }
        if let Some(program) = self.p_program {
            if core == "-p" && program == "sshpass" {
                self.secret_next = true;
                out.push_str(word);
                return;
            }
            if let Some(value) = core.strip_prefix("-p").filter(|v| !v.is_empty()) {
                out.push_str(lead);
                out.push_str("-p");
                out.push_str(&hide_value(value, self));
                return;
            }
        }
        out.push_str(&self.assignments(&url_password(word)));
    }

    /// Hides every secret-named `NAME=VALUE` in a word.
    fn assignments(&mut self, word: &str) -> String {
        let mut out = String::with_capacity(word.len());
        let mut rest = word;
        while let Some(eq) = rest.find('=') {
            let before = &rest[..eq];
            let name_start = before
                .char_indices()
                .rev()
                .take_while(|(_, c)| is_name_char(*c))
                .last()
                .map_or(eq, |(i, _)| i);
            out.push_str(&rest[..=eq]);
            rest = &rest[eq + 1..];
            if !is_secret_name(&before[name_start..]) {
                continue;
            }
            let end = rest.find(['&', ';']).unwrap_or(rest.len());
            out.push_str(&hide_value(&rest[..end], self));
            rest = &rest[end..];
        }
        out.push_str(rest);
        out
    }
}

/// A secret value within one word, hidden. A quoted value is hidden up to
/// its closing quote, which may be in a later word; quotes that close
/// around the value are kept.
fn hide_value(value: &str, scan: &mut Scan) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(q) if is_quote(q) => {
            let inner = chars.as_str();
            match inner.find(q) {
                Some(i) => format!("{q}{MARK}{q}{}", &inner[i + 1..]),
                None => {
                    scan.hide_until = Some(q);
                    format!("{q}{MARK}{q}")
                }
            }
        }
        _ => {
            let kept = value.trim_end_matches(|c| is_quote(c) || c == ')');
            format!("{MARK}{}", &value[kept.len()..])
        }
    }
}

/// A word with the password of any URL in it (`scheme://user:PASSWORD@`)
/// hidden.
fn url_password(word: &str) -> String {
    let Some(scheme_end) = word.find("://") else {
        return word.to_string();
    };
    let start = scheme_end + 3;
    let authority_end = word[start..]
        .find(['/', '?', '#'])
        .map_or(word.len(), |i| start + i);
    let authority = &word[start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return word.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return word.to_string();
    };
    format!(
        "{}{MARK}{}",
        &word[..start + colon + 1],
        &word[start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        command_line(args)
    }

    #[test]
    fn flag_values_are_hidden_in_both_forms() {
        for flag in [
            "--password",
            "--token",
            "--secret",
            "--api-key",
            "--apikey",
            "--api_key",
            "--client-secret",
            "--db-password",
            "--passwd",
            "--pass",
            "-password",
            "--auth",
            "--access-token",
            "--PASSWORD",
            "--Api-Key",
        ] {
            assert_eq!(
                line(&["prog", flag, "hunter2", "--verbose"]),
                format!("prog {flag} *** --verbose"),
                "{flag}"
            );
            assert_eq!(
                line(&["prog", &format!("{flag}=hunter2"), "x"]),
                format!("prog {flag}=*** x"),
                "{flag}="
            );
        }
    }

    #[test]
    fn a_value_with_spaces_is_hidden_whole() {
        assert_eq!(
            line(&["prog", "--password", "correct horse battery"]),
            "prog --password ***"
        );
        assert_eq!(
            line(&["prog", "--password=correct horse", "x"]),
            "prog --password=*** x"
        );
    }

    #[test]
    fn assignments_are_hidden_anywhere_in_a_word() {
        for (arg, shown) in [
            ("password=hunter2", "password=***"),
            ("PASSWORD=hunter2", "PASSWORD=***"),
            ("token=abc", "token=***"),
            ("secret=abc", "secret=***"),
            ("passwd=abc", "passwd=***"),
            ("apikey=abc", "apikey=***"),
            ("api_key=abc", "api_key=***"),
            ("auth=abc", "auth=***"),
            ("PGPASSWORD=abc", "PGPASSWORD=***"),
            ("MYSQL_PWD=abc", "MYSQL_PWD=***"),
            (
                "https://api.example/v1?user=ana&token=abc&page=2",
                "https://api.example/v1?user=ana&token=***&page=2",
            ),
            (
                "Server=db;User=ana;Password=abc;Database=x",
                "Server=db;User=ana;Password=***;Database=x",
            ),
            ("clientSecret=abc", "clientSecret=***"),
        ] {
            assert_eq!(line(&["prog", arg]), format!("prog {shown}"), "{arg}");
        }
    }

    #[test]
    fn harmless_flags_and_assignments_stay() {
        let plain = [
            "sleep",
            "300",
            "--port=8080",
            "-p",
            "22",
            "user=ana",
            "--author",
            "x",
            "--keep",
            "y",
            "--passive",
            "z",
        ];
        assert_eq!(line(&plain), plain.join(" "));
        assert_eq!(line(&["mkdir", "-p", "/tmp/a"]), "mkdir -p /tmp/a");
        assert_eq!(line(&["ssh", "-p", "2222", "host"]), "ssh -p 2222 host");
    }

    #[test]
    fn secrets_inside_a_shell_command_are_hidden() {
        assert_eq!(
            line(&["sh", "-c", "mysql --password hunter2 db; echo done"]),
            "sh -c mysql --password *** db; echo done"
        );
        assert_eq!(
            line(&["sh", "-c", "curl --token 'two words' https://x"]),
            "sh -c curl --token '***' https://x"
        );
        assert_eq!(
            line(&["sh", "-c", "run password=\"a b c\" next"]),
            "sh -c run password=\"***\" next"
        );
        assert_eq!(
            line(&["bash", "-c", "X_TOKEN=abc ./deploy"]),
            "bash -c X_TOKEN=*** ./deploy"
        );
    }

    #[test]
    fn url_passwords_are_hidden() {
        assert_eq!(
            line(&["psql", "postgres://ana:hunter2@db.example:5432/app"]),
            "psql postgres://ana:***@db.example:5432/app"
        );
        assert_eq!(
            line(&["redis-cli", "-u", "redis://:hunter2@cache"]),
            "redis-cli -u redis://:***@cache"
        );
        assert_eq!(
            line(&["git", "clone", "https://example.org/a@b"]),
            "git clone https://example.org/a@b"
        );
    }

    #[test]
    fn authorization_headers_and_bearer_tokens_are_hidden() {
        assert_eq!(
            line(&["curl", "-H", "Authorization: Bearer abc.def", "https://x"]),
            "curl -H Authorization: Bearer *** https://x"
        );
        assert_eq!(
            line(&["curl", "-H", "authorization: Basic YW5hOmh1bnRlcjI="]),
            "curl -H authorization: Basic ***"
        );
        assert_eq!(
            line(&["curl", "-H", "X-Api-Key: abc"]),
            "curl -H X-Api-Key: ***"
        );
    }

    #[test]
    fn p_is_a_password_only_for_programs_that_say_so() {
        assert_eq!(
            line(&["/usr/bin/mysql", "-u", "root", "-phunter2", "app"]),
            "/usr/bin/mysql -u root -p*** app"
        );
        // For mysql a separate word after -p is the database, not a password.
        assert_eq!(line(&["mysql", "-p", "app"]), "mysql -p app");
        assert_eq!(
            line(&["sshpass", "-p", "hunter2", "ssh", "host"]),
            "sshpass -p *** ssh host"
        );
        assert_eq!(line(&["iperf3", "-p5201"]), "iperf3 -p5201");
    }

    #[test]
    fn names_are_judged_without_case_or_dashes() {
        assert!(is_secret_name("--Password"));
        assert!(is_secret_name("DB_PASS"));
        assert!(is_secret_name("oauth-token"));
        assert!(!is_secret_name("--passive"));
        assert!(!is_secret_name("--author"));
        assert!(!is_secret_name("--"));
        assert!(!is_secret_name("compass"));
    }
}
