//! The work behind each command line, once `main.rs` has parsed it:
//! merging `connect`'s flags with the config file, running the session on
//! its own runtime, and the catalog and credential tools, each giving back
//! the line to print.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sprijin_proto::code::{CodeError, SessionCode};
use sprijin_proto::path::direct::Policy;
use sprijin_proto::tls::{Fingerprint, TlsError};

use crate::catalog_tool::{self, CatalogToolError};
use crate::config::{ConfigFileError, ConsoleFile};
use crate::connect::{ConnectArgs, connect};
use crate::credential_tool::{self, CredentialToolError};
use crate::driver::DriverError;
use crate::session::ConnectOptions;

/// The name the person sees when the technician gives none.
pub const DEFAULT_TECHNICIAN: &str = "a technician";

/// What `connect`'s command line said besides the code. `None` is "not
/// given": the config file's value, else the default, is used instead.
#[derive(Clone, Debug, Default)]
pub struct ConnectFlags {
    pub relay: Option<String>,
    pub relay_fingerprint: Option<Fingerprint>,
    /// The config file named with `--config`.
    pub config: Option<PathBuf>,
    pub name: Option<String>,
    pub token: Option<String>,
    pub catalog: Option<PathBuf>,
    pub credential: Option<PathBuf>,
    pub exec: Vec<String>,
    pub json: bool,
    pub data_dir: Option<PathBuf>,
    /// Seconds; the command line already refuses 0.
    pub session_idle_timeout: Option<u64>,
    pub direct: Option<Policy>,
}

/// A `connect` that cannot start or whose session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error(transparent)]
    Code(#[from] CodeError),
    #[error(transparent)]
    ConfigFile(#[from] ConfigFileError),
    #[error(
        "no relay given: pass --relay HOST:PORT, set SPRIJIN_RELAY, or set relay in the config file"
    )]
    NoRelay,
    /// The file's `relay_fingerprint` is not a fingerprint.
    #[error(transparent)]
    Fingerprint(#[from] TlsError),
    #[error(transparent)]
    Credential(#[from] CredentialToolError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Session(#[from] DriverError),
}

impl ConnectFlags {
    /// Merges the flags (and their variables) with the config file: a flag
    /// beats the file, which beats the default. Reads the credential file.
    pub fn resolve(self, code: SessionCode, file: ConsoleFile) -> Result<ConnectArgs, CliError> {
        let relay = self.relay.or(file.relay).ok_or(CliError::NoRelay)?;
        let relay_fingerprint = match (self.relay_fingerprint, file.relay_fingerprint) {
            (Some(fp), _) => Some(fp),
            (None, Some(text)) => Some(text.parse::<Fingerprint>()?),
            (None, None) => None,
        };
        let technician = self
            .name
            .or(file.name)
            .unwrap_or_else(|| DEFAULT_TECHNICIAN.to_string());
        let token = self.token.or(file.token);
        let catalog = self.catalog.or(file.catalog);
        let credential = self
            .credential
            .or(file.credential)
            .as_deref()
            .map(credential_tool::load)
            .transpose()?;
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| sprijin_proto::paths::default_data_dir("console"));
        Ok(ConnectArgs {
            code,
            options: ConnectOptions {
                relay,
                relay_fingerprint,
                technician,
                token,
                session_idle_timeout: self
                    .session_idle_timeout
                    .or(file.session_idle_timeout.map(u64::from))
                    .map_or(
                        sprijin_proto::tls::SESSION_IDLE_TIMEOUT,
                        Duration::from_secs,
                    ),
                direct: self.direct.or(file.direct).unwrap_or_default(),
            },
            catalog,
            credential,
            exec: self.exec,
            json: self.json,
            data_dir,
        })
    }
}

/// Checks the code, reads the config file (`flags.config`, else the
/// default one if present) and merges it with the flags.
pub fn connect_args(code: &str, flags: ConnectFlags) -> Result<ConnectArgs, CliError> {
    let code: SessionCode = code.parse()?;
    let file = ConsoleFile::load(flags.config.as_deref())?;
    flags.resolve(code, file)
}

/// Runs a whole session on a runtime of its own. `Ok(true)` when every
/// command succeeded.
pub fn run_connect(args: ConnectArgs) -> Result<bool, CliError> {
    let runtime = sprijin_proto::runtime::session().map_err(CliError::Runtime)?;
    let result = runtime.block_on(connect(args));
    // Reading standard input blocks a runtime thread that cannot be
    // interrupted, so the runtime is shut down without waiting for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(result?)
}

/// `catalog keygen OUT`: makes the key pair and says where it went.
pub fn catalog_keygen(out: &Path) -> Result<String, CatalogToolError> {
    let public = catalog_tool::keygen(out)?;
    Ok(format!(
        "wrote the private key to {} and the public key to {}",
        out.display(),
        public.display()
    ))
}

/// `catalog sign DIR`: signs the catalog, expiring at `expires` (default:
/// 90 days from now), and says what was signed.
pub fn catalog_sign(
    dir: &Path,
    key: &Path,
    expires: Option<&str>,
) -> Result<String, CatalogToolError> {
    catalog_tool::sign(dir, key, expires, SystemTime::now()).map(|summary| summary.to_string())
}

/// `catalog verify DIR`: checks the signature now and says what it covers.
pub fn catalog_verify(dir: &Path, key: &Path) -> Result<String, CatalogToolError> {
    catalog_tool::verify(dir, key, SystemTime::now()).map(|summary| summary.to_string())
}

/// `credential issue`: checks the days, writes the credential and says
/// what was issued.
pub fn credential_issue(
    key: &Path,
    name: &str,
    valid_days: Option<&str>,
    out: &Path,
) -> Result<String, CredentialToolError> {
    let days = credential_tool::valid_days(valid_days)?;
    credential_tool::issue(key, name, days, out, SystemTime::now())
        .map(|summary| summary.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const FP_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn code() -> SessionCode {
        use sprijin_proto::code::{Nameplate, Password};
        SessionCode::new(Nameplate::new(7).unwrap(), Password::generate())
    }

    fn refused(result: Result<ConnectArgs, CliError>) -> CliError {
        match result {
            Ok(_) => panic!("resolved, but should be refused"),
            Err(e) => e,
        }
    }

    fn file() -> ConsoleFile {
        ConsoleFile {
            relay: Some("file:1".into()),
            relay_fingerprint: Some(FP_B.into()),
            name: Some("File Name".into()),
            token: Some("file-token".into()),
            catalog: Some(PathBuf::from("/file/catalog")),
            credential: None,
            data_dir: Some(PathBuf::from("/file/dir")),
            session_idle_timeout: std::num::NonZeroU64::new(30),
            direct: Some(Policy::Never),
        }
    }

    #[test]
    fn a_flag_beats_the_file_which_beats_the_default() {
        let flags = ConnectFlags {
            relay: Some("flag:1".into()),
            relay_fingerprint: Some(FP_A.parse().unwrap()),
            name: Some("Flag Name".into()),
            token: Some("flag-token".into()),
            catalog: Some(PathBuf::from("/flag/catalog")),
            data_dir: Some(PathBuf::from("/flag/dir")),
            exec: vec!["diag".into()],
            json: true,
            session_idle_timeout: Some(90),
            direct: Some(Policy::Allow),
            ..ConnectFlags::default()
        };
        let args = flags.resolve(code(), file()).unwrap();
        assert_eq!(args.options.relay, "flag:1");
        assert_eq!(args.options.relay_fingerprint, Some(FP_A.parse().unwrap()));
        assert_eq!(args.options.technician, "Flag Name");
        assert_eq!(args.options.token.as_deref(), Some("flag-token"));
        assert_eq!(args.catalog, Some(PathBuf::from("/flag/catalog")));
        assert_eq!(args.data_dir, PathBuf::from("/flag/dir"));
        assert_eq!(args.exec, vec!["diag".to_string()]);
        assert!(args.json);
        assert_eq!(args.options.session_idle_timeout, Duration::from_secs(90));
        assert_eq!(args.options.direct, Policy::Allow);

        let args = ConnectFlags::default().resolve(code(), file()).unwrap();
        assert_eq!(args.options.relay, "file:1");
        assert_eq!(args.options.relay_fingerprint, Some(FP_B.parse().unwrap()));
        assert_eq!(args.options.technician, "File Name");
        assert_eq!(args.options.token.as_deref(), Some("file-token"));
        assert_eq!(args.data_dir, PathBuf::from("/file/dir"));
        assert_eq!(args.options.session_idle_timeout, Duration::from_secs(30));
        assert_eq!(args.options.direct, Policy::Never);

        let only_relay = ConnectFlags {
            relay: Some("flag:1".into()),
            ..ConnectFlags::default()
        };
        let args = only_relay.resolve(code(), ConsoleFile::default()).unwrap();
        assert_eq!(args.options.technician, DEFAULT_TECHNICIAN);
        assert_eq!(args.options.relay_fingerprint, None);
        assert_eq!(args.options.token, None);
        assert!(args.credential.is_none());
        assert_eq!(args.options.direct, Policy::Allow);
        assert_eq!(
            args.options.session_idle_timeout,
            sprijin_proto::tls::SESSION_IDLE_TIMEOUT
        );
        assert_eq!(
            args.data_dir,
            sprijin_proto::paths::default_data_dir("console")
        );
    }

    #[test]
    fn no_relay_and_a_bad_fingerprint_in_the_file_are_named() {
        let err = refused(ConnectFlags::default().resolve(code(), ConsoleFile::default()));
        assert!(matches!(err, CliError::NoRelay), "{err:?}");
        assert!(err.to_string().contains("set SPRIJIN_RELAY"), "{err}");

        let bad = ConsoleFile {
            relay_fingerprint: Some("sha256:nothex".into()),
            ..file()
        };
        let err = refused(ConnectFlags::default().resolve(code(), bad));
        assert!(matches!(err, CliError::Fingerprint(_)), "{err:?}");
        assert!(
            err.to_string()
                .contains("\"sha256:nothex\" is not a relay fingerprint"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_credential_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let flags = ConnectFlags {
            credential: Some(dir.path().join("missing.cred")),
            ..ConnectFlags::default()
        };
        let err = refused(flags.resolve(code(), file()));
        assert!(matches!(err, CliError::Credential(_)), "{err:?}");
    }
}
