//! Everything the relay, the agent and the console must agree on: message
//! types, their codec and framing, the session code, the end-to-end channel,
//! the script catalog and technician credential formats and the QUIC/TLS
//! helpers.
//!
//! The codec, code parsing, handshake crypto, catalog and credential checks are pure
//! functions over bytes; only `framing`, `tls`, `path`, `client`, `e2e` and
//! `runtime` touch I/O types.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod channel;
pub mod client;
pub mod code;
pub mod codec;
pub mod credential;
pub mod diag_text;
pub mod e2e;
pub mod fleet;
pub mod framing;
pub mod message;
pub mod path;
pub mod paths;
pub mod runtime;
pub mod text;
pub mod tls;
pub mod udp;
pub mod utc;
pub mod waiting;
pub mod words;
