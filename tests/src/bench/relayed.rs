//! One QUIC connection between two endpoints through the relay's datagram
//! forwarder, as agent and console make it after pairing: real rendezvous
//! for real tickets, then a [`RelayedPath`] on each side. Also the same two
//! endpoints connected directly, for the baseline.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, bail};
use quinn::{Connection, Endpoint};
use sha2::{Digest, Sha256};
use sprijin_proto::client::RelayLink;
use sprijin_proto::message::control::{ClientMsg, RelayMsg, Role, close_code};
use sprijin_proto::path::{RECV_BUFFER, RelayedPath, Ticket, endpoint_config};
use sprijin_proto::tls::{self, Fingerprint};
use sprijin_proto::waiting::{Held, Pairing, WaitingTicket};
use tokio::net::UdpSocket;

/// The name the console asks for; the agent's certificate is pinned by
/// fingerprint, so it only has to be well formed.
const SERVER_NAME: &str = "sprijin-agent";

/// How long a waiting agent gives each wait for an answer before sending
/// the next.
const ASK_AGAIN: std::time::Duration = std::time::Duration::from_millis(100);

/// How long the relay may take to tell a waiting agent of its claim.
const TOLD_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Both sides' tickets, the relay's address, and the console's control
/// link, which the relay keeps until set-up is over.
pub struct Tickets {
    pub agent: Ticket,
    pub console: Ticket,
    pub relay: SocketAddr,
    pub link: RelayLink,
}

/// Pairs through the relay at `relay` the way agent and console do, and
/// returns the tickets it issued: the agent takes a code and waits apart,
/// the console claims it and hears it is paired, and the agent's next
/// wait is answered with its side of the session, sealed.
pub async fn pair(relay: &str, pin: Fingerprint) -> anyhow::Result<Tickets> {
    let mut agent = RelayLink::connect(relay, Some(pin), Role::Agent).await?;
    agent.writer.write_msg(&ClientMsg::Open).await?;
    let waiting = match agent.answer().await? {
        RelayMsg::Opened { ticket, .. } => ticket,
        other => bail!("expected a nameplate, got {other:?}"),
    };
    let relay_at = agent.connection.remote_address();
    agent
        .connection
        .close(close_code::PARKED.into(), b"waiting apart");
    let mut console = RelayLink::connect(relay, Some(pin), Role::Console).await?;
    console
        .writer
        .write_msg(&ClientMsg::Claim {
            nameplate: waiting.nameplate,
            technician: "bench".into(),
            token: None,
        })
        .await?;
    let console_ticket = match console.answer().await? {
        RelayMsg::Paired { ticket, .. } => ticket,
        other => bail!("expected the console's ticket, got {other:?}"),
    };
    let pairing = told_of_claim(relay_at, &waiting).await?;
    Ok(Tickets {
        agent: pairing.ticket,
        console: console_ticket,
        relay: relay_at,
        link: console,
    })
}

/// Sends waits under `ticket` to the relay at `relay` until one is
/// answered with the claim; the agent's side of the session.
async fn told_of_claim(relay: SocketAddr, ticket: &WaitingTicket) -> anyhow::Result<Pairing> {
    let socket = UdpSocket::bind(if relay.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    })
    .await?;
    socket.connect(relay).await?;
    let mut buf = [0u8; 512];
    let told = async {
        for counter in 1.. {
            socket.send(&ticket.wait(counter, false)).await?;
            let heard = tokio::time::timeout(ASK_AGAIN, async {
                loop {
                    let len = socket.recv(&mut buf).await?;
                    if let Some(answer) = ticket.read_answer(&buf[..len]) {
                        return Ok::<_, std::io::Error>(answer.held);
                    }
                }
            })
            .await;
            match heard {
                Ok(Ok(Held::Claimed(pairing))) => return Ok(pairing),
                Ok(Ok(Held::NotHere)) => bail!("the relay no longer holds the code"),
                Ok(Ok(Held::Closing)) => bail!("the relay is shutting down"),
                Ok(Ok(Held::Waiting)) | Err(_) => {}
                Ok(Err(e)) => return Err(e.into()),
            }
        }
        bail!("the waits' counter ran out")
    };
    tokio::time::timeout(TOLD_WITHIN, told)
        .await
        .context("the relay did not tell the waiting agent of its claim")?
}

/// A self-signed server configuration for the agent's side and the client
/// configuration that pins it, both with the programs' ALPN.
pub fn configs() -> anyhow::Result<(quinn::ServerConfig, quinn::ClientConfig)> {
    let generated = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])?;
    let cert = generated.cert.der().clone();
    let pin = Fingerprint::of(&cert);
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    tls.alpn_protocols = vec![tls::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let (mut client, _) = tls::client_config(Some(pin))?;
    // Quinn's defaults, as on the server side: a session probes for bigger
    // packets, which the relay's control connections do not.
    client.transport_config(Arc::new(quinn::TransportConfig::default()));
    Ok((server, client))
}

/// The two ends of one connection, and what carries it.
pub struct Ends {
    pub agent: Connection,
    pub console: Connection,
    pub agent_path: Option<RelayedPath>,
    pub console_path: Option<RelayedPath>,
    pub endpoints: Vec<Endpoint>,
}

/// Connects a console-side path to an agent-side path through the relay.
pub async fn through_relay(relay: SocketAddr, tickets: &Tickets) -> anyhow::Result<Ends> {
    let (server, client) = configs()?;
    let agent_path = RelayedPath::new(relay, tickets.agent.clone(), Some(server))?;
    let console_path = RelayedPath::new(relay, tickets.console.clone(), None)?;
    let connecting = console_path
        .endpoint()
        .connect_with(client, relay, SERVER_NAME)?;
    let accept = async {
        let incoming = agent_path
            .endpoint()
            .accept()
            .await
            .context("the agent's endpoint closed")?;
        anyhow::Ok(incoming.await?)
    };
    let (console, agent) = tokio::join!(connecting, accept);
    Ok(Ends {
        agent: agent?,
        console: console?,
        agent_path: Some(agent_path),
        console_path: Some(console_path),
        endpoints: Vec::new(),
    })
}

/// A loopback socket with the receive buffer a relayed path asks for.
fn socket() -> anyhow::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    let _ = state.set_recv_buffer_size((&socket).into(), RECV_BUFFER);
    Ok(socket)
}

/// The same two endpoints' settings, connected to each other directly.
pub async fn direct() -> anyhow::Result<Ends> {
    let (server, client) = configs()?;
    let runtime = Arc::new(quinn::TokioRuntime);
    let agent = Endpoint::new(endpoint_config(), Some(server), socket()?, runtime.clone())?;
    let console = Endpoint::new(endpoint_config(), None, socket()?, runtime)?;
    let connecting = console.connect_with(client, agent.local_addr()?, SERVER_NAME)?;
    let accept = async {
        let incoming = agent.accept().await.context("the endpoint closed")?;
        anyhow::Ok(incoming.await?)
    };
    let (c, a) = tokio::join!(connecting, accept);
    Ok(Ends {
        agent: a?,
        console: c?,
        agent_path: None,
        console_path: None,
        endpoints: vec![agent, console],
    })
}

/// The bytes of a transfer: each 8-byte word is its own index, so a lost,
/// repeated or reordered piece shows in the digest.
pub fn pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let at = offset + i as u64;
        *b = (at / 8).to_le_bytes()[(at % 8) as usize];
    }
}

/// The digest of the first `len` bytes of the pattern.
pub fn pattern_digest(len: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        pattern(at, &mut buf[..n]);
        h.update(&buf[..n]);
        at += n as u64;
    }
    h.finalize().into()
}

/// Writes `len` bytes of the pattern on a new stream and finishes it.
pub async fn send_pattern(conn: &Connection, len: u64) -> anyhow::Result<()> {
    send_pattern_paced(conn, len, None).await
}

/// Like [`send_pattern`], waiting `every` between two 64 KiB pieces when
/// given, as a script's output comes: the receiver then only acknowledges
/// each piece and is quiet in between.
pub async fn send_pattern_paced(
    conn: &Connection,
    len: u64,
    every: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let mut send = conn.open_uni().await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        pattern(at, &mut buf[..n]);
        send.write_all(&buf[..n]).await?;
        at += n as u64;
        if let Some(every) = every {
            tokio::time::sleep(every).await;
        }
    }
    send.finish()?;
    let _ = send.stopped().await;
    Ok(())
}

/// Reads the next stream to its end; calls `progress` with the bytes read
/// so far after each read. Returns the length and digest.
pub async fn receive(
    conn: &Connection,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<(u64, [u8; 32])> {
    let mut recv = conn.accept_uni().await?;
    let mut h = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    while let Some(n) = recv.read(&mut buf).await? {
        h.update(&buf[..n]);
        total += n as u64;
        progress(total);
    }
    Ok((total, h.finalize().into()))
}
