//! Session commands as the technician types them (`diag`, `run ID K=V`, ...),
//! parsed at the boundary. Arguments split like a shell would (quotes group
//! words), but nothing is ever run through a shell.

use std::path::PathBuf;
use std::str::FromStr;

use sprijin_proto::catalog::{CatalogError, ScriptId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Diag,
    Findings,
    Processes,
    Scripts,
    Run {
        script: ScriptId,
        params: Vec<(String, String)>,
    },
    Cancel {
        run: u32,
    },
    Report(PathBuf),
    /// A message for the person's screen, as typed.
    Say(String),
    /// A question the person answers by typing.
    Ask(String),
    /// A copy of a file on the person's machine, kept as `local`.
    Fetch {
        path: String,
        local: Option<PathBuf>,
    },
    Help,
    Quit,
}

pub const HELP: &str = "\
commands:
  diag                  the machine's state and what looks wrong
  findings              only what looks wrong, most severe first
  processes             the top processes by CPU and by memory
  scripts               the catalog's scripts and their risk
  run ID [KEY=VALUE]... run a catalog script (the person must approve)
  cancel RUN            stop a run in progress
  say TEXT              show a message on the person's screen
  ask TEXT              ask the person a question; their typed answer comes back
  fetch PATH [LOCAL]    copy a file from the person's machine (they must approve)
  report FILE           write a Markdown report of this session
  help                  this text
  quit                  end the session";

impl FromStr for Command {
    type Err = CommandError;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        // Messages and questions are taken as typed: an apostrophe is a
        // word, not a quote.
        let trimmed = line.trim();
        let (first, rest) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        match (first, rest.trim()) {
            ("say", "") => return Err(CommandError::Usage("say TEXT")),
            ("ask", "") => return Err(CommandError::Usage("ask TEXT")),
            ("say", text) => return Ok(Command::Say(text.to_string())),
            ("ask", text) => return Ok(Command::Ask(text.to_string())),
            _ => {}
        }
        let words = shell_words::split(line).map_err(|_| CommandError::Quotes(line.to_string()))?;
        let (name, args) = words.split_first().ok_or(CommandError::Empty)?;
        let none = |cmd: Command| {
            if args.is_empty() {
                Ok(cmd)
            } else {
                Err(CommandError::ExtraArguments(name.clone()))
            }
        };
        match name.as_str() {
            "diag" => none(Command::Diag),
            "findings" => none(Command::Findings),
            "processes" => none(Command::Processes),
            "scripts" => none(Command::Scripts),
            "help" | "?" => none(Command::Help),
            "quit" | "exit" => none(Command::Quit),
            "report" => match args {
                [file] => Ok(Command::Report(PathBuf::from(file))),
                _ => Err(CommandError::Usage("report FILE")),
            },
            "fetch" => match args {
                [path] => Ok(Command::Fetch {
                    path: path.clone(),
                    local: None,
                }),
                [path, local] => Ok(Command::Fetch {
                    path: path.clone(),
                    local: Some(PathBuf::from(local)),
                }),
                _ => Err(CommandError::Usage("fetch PATH [LOCAL]")),
            },
            "cancel" => match args {
                [run] => run
                    .parse()
                    .map(|run| Command::Cancel { run })
                    .map_err(|_| CommandError::Usage("cancel RUN (the run's number)")),
                _ => Err(CommandError::Usage("cancel RUN")),
            },
            "run" => {
                let (script, rest) = args
                    .split_first()
                    .ok_or(CommandError::Usage("run ID [KEY=VALUE]..."))?;
                let params = rest
                    .iter()
                    .map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .ok_or_else(|| CommandError::Param(kv.clone()))
                    })
                    .collect::<Result<_, _>>()?;
                Ok(Command::Run {
                    script: script.parse()?,
                    params,
                })
            }
            other => Err(CommandError::Unknown(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    #[error("empty command: type help for the list")]
    Empty,
    #[error("unknown command {0:?}: type help for the list")]
    Unknown(String),
    #[error("{0} takes no arguments")]
    ExtraArguments(String),
    #[error(transparent)]
    Script(#[from] CatalogError),
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("{0:?} is not KEY=VALUE: give script parameters as KEY=VALUE")]
    Param(String),
    #[error("unbalanced quotes in {0:?}")]
    Quotes(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!("diag".parse(), Ok(Command::Diag));
        assert_eq!(" quit ".parse(), Ok(Command::Quit));
        assert_eq!(
            "run restart-unit unit=nginx.service".parse(),
            Ok(Command::Run {
                script: "restart-unit".parse().unwrap(),
                params: vec![("unit".into(), "nginx.service".into())]
            })
        );
        assert_eq!(
            "run echo-test 'word=a; rm -rf /'".parse(),
            Ok(Command::Run {
                script: "echo-test".parse().unwrap(),
                params: vec![("word".into(), "a; rm -rf /".into())]
            })
        );
        assert_eq!(
            "report out.md".parse(),
            Ok(Command::Report("out.md".into()))
        );
        assert_eq!("cancel 3".parse(), Ok(Command::Cancel { run: 3 }));
        assert_eq!(
            "say  don't unplug it; I'm \"on\" it ".parse(),
            Ok(Command::Say("don't unplug it; I'm \"on\" it".into()))
        );
        assert_eq!(
            "ask\twhich printer?".parse(),
            Ok(Command::Ask("which printer?".into()))
        );
        assert_eq!(
            "fetch /var/log/syslog".parse(),
            Ok(Command::Fetch {
                path: "/var/log/syslog".into(),
                local: None
            })
        );
        assert_eq!(
            "fetch '/tmp/a b.txt' here.txt".parse(),
            Ok(Command::Fetch {
                path: "/tmp/a b.txt".into(),
                local: Some("here.txt".into())
            })
        );
    }

    #[test]
    fn bad_commands_say_why() {
        assert_eq!("".parse::<Command>(), Err(CommandError::Empty));
        assert!(matches!(
            "dance".parse::<Command>(),
            Err(CommandError::Unknown(_))
        ));
        assert!(matches!(
            "diag now".parse::<Command>(),
            Err(CommandError::ExtraArguments(_))
        ));
        assert!(matches!(
            "run".parse::<Command>(),
            Err(CommandError::Usage(_))
        ));
        assert!(matches!(
            "run x novalue".parse::<Command>(),
            Err(CommandError::Param(_))
        ));
        assert!(matches!(
            "run x 'a".parse::<Command>(),
            Err(CommandError::Quotes(_))
        ));
        assert!(matches!(
            "cancel x".parse::<Command>(),
            Err(CommandError::Usage(_))
        ));
        for line in ["say", "ask  ", "fetch", "fetch a b c"] {
            assert!(
                matches!(line.parse::<Command>(), Err(CommandError::Usage(_))),
                "{line:?}"
            );
        }
    }
}
