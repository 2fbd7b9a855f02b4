//! QUIC and TLS set-up shared by the three programs: the ALPN, the transport
//! limits, the relay's server config, and the client config that either pins
//! the relay by the SHA-256 fingerprint of its certificate or checks it
//! against the system's roots.
//!
//! A pinned client that meets another certificate records the fingerprint it
//! saw, so the error can show the expected and the received one side by side.
//!
//! The end-to-end session between agent and console has its own
//! configurations ([`SessionIdentity`], [`session_server_config`],
//! [`session_client_config`]): a fresh self-signed certificate per session
//! on each side, the agent as server requiring the console's certificate,
//! any certificate accepted at the TLS layer because the PAKE that follows
//! authenticates the connection (see [`crate::e2e`]).

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// The application protocol we speak on top of QUIC to the relay.
pub const ALPN: &[u8] = b"sprijin/1";

/// How often a client's idle connection to the relay pings, so NATs keep
/// the path open and a relay that lost the connection (it restarted) is
/// noticed. Under 25 s, a common NAT mapping time. The relay itself does
/// not ping: each ping costs the relay a packet in and an ack out, and with
/// thousands of waiting agents that is most of what an idle relay does.
pub const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// The application protocol of the end-to-end session between agent and
/// console; its version is the session protocol's.
pub const SESSION_ALPN: &[u8] = b"sprijin-e2e/3";

/// How long the end-to-end session may hear nothing from the other side
/// before it counts the connection as lost, unless configured otherwise.
/// This is the longest outage (relay restart, network change) a session
/// survives.
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest the end-to-end session stays silent: under the 30 s after
/// which many NATs forget a UDP mapping.
pub const SESSION_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// How many run and transfer streams one side may have open at once.
pub const SESSION_STREAMS: u32 = 256;

/// How long a connection may stay silent before it is considered dead.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bidirectional streams a client may have open to the relay: the control
/// stream, which carries the session once paired. Clients may open no
/// unidirectional stream and send no datagram.
pub const RELAY_STREAMS: u32 = 1;

/// What the relay buffers and keeps in flight for an unpaired client: room
/// for a hello and a request of up to a control frame each, and no more.
pub const CONTROL_WINDOW: u32 = 128 * 1024;

/// The paired session's window, per direction: about 100 Mbit/s at a 100 ms
/// round trip, quinn's own default for a stream.
pub const SESSION_WINDOW: u32 = 1_250_000;

/// The SHA-256 fingerprint of a certificate, shown as `sha256:HEX`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(cert_der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(cert_der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Fingerprint {
    type Err = TlsError;

    /// Accepts `sha256:HEX` or bare HEX, in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let hex_part = t
            .strip_prefix("sha256:")
            .or_else(|| t.strip_prefix("SHA256:"))
            .unwrap_or(t);
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut out)
            .map_err(|_| TlsError::BadFingerprint(s.to_string()))?;
        Ok(Fingerprint(out))
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("cannot make this session's certificate: {0}")]
    Generate(String),
    #[error(
        "session idle timeout of {0:?} is out of range: give between 1 second and a few hours, e.g. 60s"
    )]
    IdleTimeout(Duration),
    #[error(
        "{0:?} is not a relay fingerprint: expected sha256: followed by 64 hex digits, as printed by `sprijin-relay fingerprint`"
    )]
    BadFingerprint(String),
    #[error("tls set-up failed: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("quic set-up failed: {0}")]
    Quic(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    // IDLE_TIMEOUT is a small constant, so the conversion cannot fail.
    t.max_idle_timeout(quinn::IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    t
}

/// The relay's side of every client connection: one stream, no
/// unidirectional streams or datagrams, and control-sized windows until
/// [`open_session_windows`] widens them for a paired session. The stream's
/// own window is the session's from the start (quinn cannot change it
/// later), but the connection window caps what an unpaired client can
/// make the relay hold.
fn relay_transport() -> quinn::TransportConfig {
    let mut t = transport();
    t.keep_alive_interval(None)
        // One datagram per send, so each connection's send buffer stays at
        // one packet rather than a batch of them, for as long as it lives.
        .enable_segmentation_offload(false)
        // Control connections carry small messages only; probing for
        // bigger packets would cost every connection packets and memory.
        .mtu_discovery_config(None);
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(RELAY_STREAMS))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(0))
        .datagram_receive_buffer_size(None)
        .stream_receive_window(quinn::VarInt::from_u32(SESSION_WINDOW))
        .receive_window(quinn::VarInt::from_u32(CONTROL_WINDOW))
        .send_window(u64::from(CONTROL_WINDOW));
    t
}

/// Widens a relay-side connection's windows once it carries a paired
/// session, so the session runs at full speed.
pub fn open_session_windows(connection: &quinn::Connection) {
    connection.set_receive_window(quinn::VarInt::from_u32(SESSION_WINDOW));
    connection.set_send_window(u64::from(SESSION_WINDOW));
}

/// The relay's QUIC server configuration for a certificate and its key.
pub fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> Result<quinn::ServerConfig, TlsError> {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(relay_transport()));
    Ok(config)
}

/// What a pinned client saw, for the error message after a refusal.
#[derive(Clone, Default)]
pub struct PinReport(Arc<Mutex<Option<Fingerprint>>>);

impl PinReport {
    /// The fingerprint of the certificate the relay presented, if it was
    /// refused for not matching the pin.
    pub fn mismatch(&self) -> Option<Fingerprint> {
        self.0.lock().ok().and_then(|g| *g)
    }
}

/// A client configuration. With a pin, only a relay whose certificate has
/// that fingerprint is accepted; without one, the system's roots decide.
pub fn client_config(
    pin: Option<Fingerprint>,
) -> Result<(quinn::ClientConfig, PinReport), TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let report = PinReport::default();
    let mut tls = match pin {
        Some(expected) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                expected,
                provider,
                report: report.clone(),
            }))
            .with_no_client_auth(),
        None => {
            let mut roots = rustls::RootCertStore::empty();
            // Unreadable system certificates are skipped; a relay signed by
            // one of them then fails verification with a clear TLS error.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut t = transport();
    // A control connection carries a few small messages, never a session:
    // probing for bigger packets would only cost both ends work at the
    // moment a session is being set up.
    t.mtu_discovery_config(None);
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(t));
    Ok((config, report))
}

/// Accepts exactly one certificate, by fingerprint, and still checks that the
/// server holds its private key (the handshake signature).
#[derive(Debug)]
struct PinnedVerifier {
    expected: Fingerprint,
    provider: Arc<CryptoProvider>,
    report: PinReport,
}

impl fmt::Debug for PinReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinReport")
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        if got == self.expected {
            return Ok(ServerCertVerified::assertion());
        }
        if let Ok(mut seen) = self.report.0.lock() {
            *seen = Some(got);
        }
        Err(rustls::Error::General(format!(
            "relay fingerprint mismatch: expected {}, got {got}",
            self.expected
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// One side's TLS identity for one end-to-end session: a self-signed
/// certificate made for it and thrown away after.
pub struct SessionIdentity {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

impl SessionIdentity {
    /// A fresh certificate and key.
    pub fn generate() -> Result<SessionIdentity, TlsError> {
        let made = rcgen::generate_simple_self_signed(vec!["sprijin-session".to_string()])
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        Ok(SessionIdentity {
            cert: made.cert.der().clone(),
            key: made.key_pair.serialize_der(),
        })
    }

    /// The certificate (DER), as the peer receives it.
    pub fn certificate(&self) -> &[u8] {
        &self.cert
    }

    fn chain_and_key(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(self.key.clone());
        (vec![self.cert.clone()], PrivateKeyDer::Pkcs8(key))
    }
}

impl fmt::Debug for SessionIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionIdentity")
            .field("certificate", &Fingerprint::of(&self.cert))
            .finish_non_exhaustive()
    }
}

/// The end-to-end session's transport: an idle timeout of `idle` (the
/// longest outage it survives), keep-alives often enough for NATs and well
/// within the timeout, two bidirectional streams (the control stream and
/// the direct path's, [`crate::path::direct`]) and
/// [`SESSION_STREAMS`] unidirectional ones.
pub fn session_transport(idle: Duration) -> Result<quinn::TransportConfig, TlsError> {
    if idle < Duration::from_secs(1) {
        return Err(TlsError::IdleTimeout(idle));
    }
    let timeout = quinn::IdleTimeout::try_from(idle).map_err(|_| TlsError::IdleTimeout(idle))?;
    let mut t = quinn::TransportConfig::default();
    t.max_idle_timeout(Some(timeout))
        .keep_alive_interval(Some(SESSION_KEEP_ALIVE.min(idle / 3)))
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(2))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(SESSION_STREAMS))
        .datagram_receive_buffer_size(None);
    Ok(t)
}

/// The agent's side of the end-to-end session: TLS 1.3 only, the session
/// ALPN, and a client certificate required (any will do: the PAKE checks
/// it is the one the console holds).
pub fn session_server_config(
    identity: &SessionIdentity,
    idle: Duration,
) -> Result<quinn::ServerConfig, TlsError> {
    let provider = provider();
    let (chain, key) = identity.chain_and_key();
    let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(AnyCertificate { provider }))
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![SESSION_ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(session_transport(idle)?));
    Ok(config)
}

/// The console's side of the end-to-end session: TLS 1.3 only, the
/// session ALPN, its own certificate presented, any agent certificate
/// accepted (the PAKE checks it).
pub fn session_client_config(
    identity: &SessionIdentity,
    idle: Duration,
) -> Result<quinn::ClientConfig, TlsError> {
    let provider = provider();
    let (chain, key) = identity.chain_and_key();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
        .with_client_auth_cert(chain, key)?;
    tls.alpn_protocols = vec![SESSION_ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(session_transport(idle)?));
    Ok(config)
}

/// Accepts any certificate but still checks that the peer holds its
/// private key (the handshake signature). Only for the end-to-end session,
/// whose PAKE binds both certificates.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl AnyCertificate {
    fn verify13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl rustls::server::danger::ClientCertVerifier for AnyCertificate {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parses_with_and_without_prefix() {
        let fp = Fingerprint::of(b"cert");
        let shown = fp.to_string();
        assert!(shown.starts_with("sha256:"));
        assert_eq!(shown.parse::<Fingerprint>().unwrap(), fp);
        assert_eq!(
            shown
                .trim_start_matches("sha256:")
                .to_uppercase()
                .parse::<Fingerprint>()
                .unwrap(),
            fp
        );
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        for bad in ["", "sha256:", "sha256:abcd", "md5:00", &"g".repeat(64)] {
            assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
        }
    }
}
