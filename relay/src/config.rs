//! The relay's validated configuration, with every bound named once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::splice::{Interceptor, Tap};
use crate::tokens::ConsoleTokens;

/// Where the relay's TLS identity comes from.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// A self-signed certificate kept in this folder, made on first start.
    DataDir(PathBuf),
    /// PEM files given by the operator.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Clone)]
pub struct RelayConfig {
    pub listen: SocketAddr,
    pub identity: IdentitySource,
    pub limits: Limits,
    /// Only consoles with one of these tokens may claim, when set.
    pub console_tokens: Option<ConsoleTokens>,
    /// Sees every byte the relay forwards; for tests that prove it sees
    /// nothing readable.
    pub tap: Option<Tap>,
    /// Takes over paired streams instead of splicing them; tests of a
    /// malicious relay only.
    pub interceptor: Option<Interceptor>,
}

/// Every bound the relay enforces, with its default.
#[derive(Debug, Clone)]
pub struct Limits {
    /// How long a nameplate waits to be claimed.
    pub nameplate_ttl: Duration,
    /// Claims one source address may make per minute.
    pub claims_per_minute: u32,
    /// Nameplates one source address may hold waiting at once.
    pub waiting_per_address: usize,
    /// Paired sessions in total.
    pub max_sessions: usize,
    /// Connections in total (waiting agents included).
    pub max_connections: usize,
    /// Bytes per second per session and direction; `None` is unlimited.
    pub session_bytes_per_sec: Option<u64>,
    /// A session with no bytes either way for this long is ended.
    pub session_idle_timeout: Duration,
    /// A client must say hello and ask for something within this time.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nameplate_ttl: Duration::from_secs(600),
            claims_per_minute: 10,
            waiting_per_address: 5,
            max_sessions: 10_000,
            max_connections: 50_000,
            session_bytes_per_sec: None,
            session_idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl RelayConfig {
    /// A relay on `listen` with its identity in `data_dir` and default limits.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        RelayConfig {
            listen,
            identity: IdentitySource::DataDir(data_dir),
            limits: Limits::default(),
            console_tokens: None,
            tap: None,
            interceptor: None,
        }
    }
}
