//! The accept loop and the per-connection handlers.
//!
//! Each connection opens one stream, says hello and asks for one thing: an
//! agent to open a nameplate, a console to claim one. Refusals are an error
//! frame on that stream, then a close. An agent that has its nameplate
//! closes its connection and waits apart (see `parked`); its handler holds
//! the claim for it when it comes, tells it, and pairs it when it comes
//! back with its waiting ticket on a new connection. Pairing gives each side its
//! forwarding ticket; the session then runs end to end over the forwarder
//! (`forward`), and the relay only keeps the two control connections until
//! the clients close them, to learn how the set-up went.
//!
//! Control connections get control-sized windows and their messages are
//! read with the control frame limit, so a client costs the relay little
//! however it behaves.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, ConnectionError, Endpoint, Incoming, IncomingFuture, TransportErrorCode};
use sprijin_proto::code::Nameplate;
use sprijin_proto::framing::{FrameError, FrameReader, FrameWriter};
use sprijin_proto::message::control::{
    ClientMsg, ErrorCode, ErrorFrame, Hello, PROTOCOL_VERSION, RelayMsg, Role, Technician,
    close_code, version_mismatch,
};
use sprijin_proto::path::Ticket;
use sprijin_proto::path::wire::{Side as PathSide, TicketMint};
use sprijin_proto::tls::{self, Fingerprint};
use sprijin_proto::waiting::Pairing;
use tokio::task::JoinSet;
use tokio::time::Timeout;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{ConfigError, RelayConfig};
use crate::forward::{self, ForwardOptions, Forwarder, Teller};
use crate::identity::{Identity, IdentityError};
use crate::limits::{ConnectionLimiter, ConnectionSlot, LimitKey, RateLimiter, limit_key};
use crate::metrics::{Limit, Metrics, Outcome};
use crate::parked::{ABSENT_AFTER, Arrivals, Parked, RETURN_WITHIN, TELL_EVERY};
use crate::rendezvous::{ClaimError, EntryId, Rendezvous, TableLimits};

/// How long the relay waits for a refused peer to read the error frame
/// before it closes the connection.
const LINGER: Duration = Duration::from_secs(2);

/// How often forgotten nameplates and idle rate-limit entries are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// How long a retry token is good for: longer than any client keeps
/// sending its Initial before it gives up (its idle timeout), so a
/// connection whose retried Initials were lost or queued on a busy relay
/// is still admitted once one arrives. The token stays bound to the
/// address that proved it receives there.
const RETRY_TOKEN_LIFETIME: Duration = Duration::from_secs(120);

type Reader = FrameReader<quinn::RecvStream>;
type Writer = FrameWriter<quinn::SendStream>;

/// What a claiming console hands to the waiting agent's task.
struct Claimed {
    /// The session's id in both tickets.
    session: u64,
    /// The agent's forwarding ticket.
    agent_ticket: Ticket,
    /// The console's forwarding ticket.
    console_ticket: Ticket,
    technician: Technician,
    // When the claim arrived, for the set-up time.
    at: tokio::time::Instant,
    // The console's control stream, open until the agent's task ends.
    console_writer: Writer,
    _console_reader: Reader,
    // Kept so the console's connection lives as long as the session.
    connection: Connection,
    // The console's connection counts against its address while it lives.
    _slot: ConnectionSlot,
}

struct Shared {
    config: RelayConfig,
    tickets: sprijin_proto::waiting::WaitingKey,
    rendezvous: Rendezvous<Claimed>,
    claims: RateLimiter,
    opens: RateLimiter,
    connections: ConnectionLimiter,
    metrics: Arc<Metrics>,
    mint: TicketMint,
    /// Waiting agents that closed their connection.
    parked: Arc<Parked>,
    /// Claims whose agent has not bound its side of the session yet.
    arrivals: Arc<Arrivals>,
    teller: Teller,
}

/// A bound relay, ready to run: the control endpoint and the forwarder
/// share its one UDP socket.
pub struct Relay {
    endpoint: Endpoint,
    fingerprint: Fingerprint,
    shared: Arc<Shared>,
    /// Taken by `run`.
    forwarder: Option<Forwarder>,
}

impl Relay {
    /// Loads the identity and binds the QUIC endpoint. Needs a tokio runtime.
    pub fn bind(config: RelayConfig) -> Result<Relay, RelayError> {
        config.limits.validate()?;
        let identity = Identity::load(&config.identity)?;
        let fingerprint = identity.fingerprint();
        let secret = crate::secret::Secret::load_or_create(&config.data_dir)?;
        let mut server =
            tls::server_config(identity.cert, identity.key).map_err(RelayError::Tls)?;
        server.retry_token_lifetime(RETRY_TOKEN_LIFETIME);
        let bind_error = |e: std::io::Error| RelayError::Bind {
            addr: config.listen,
            reason: e.to_string(),
        };
        let mint = TicketMint::new(secret.forwarding());
        let metrics = Arc::new(Metrics::default());
        let parked = Arc::new(Parked::new(secret.tickets()));
        let arrivals = Arc::new(Arrivals::default());
        let (forwarder, socket) = forward::bind(
            config.listen,
            ForwardOptions {
                mint: mint.clone(),
                bytes_per_sec: config.limits.session_bytes_per_sec,
                idle_timeout: config.limits.session_idle_timeout,
                max_sessions: config.limits.max_sessions,
                tap: config.tap.clone(),
                metrics: metrics.clone(),
                parked: parked.clone(),
                arrivals: arrivals.clone(),
            },
        )
        .map_err(bind_error)?;
        let teller = forwarder.teller();
        let endpoint = Endpoint::new_with_abstract_socket(
            secret.endpoint_config(),
            Some(server),
            Arc::new(socket),
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(bind_error)?;
        let limits = &config.limits;
        let shared = Arc::new(Shared {
            rendezvous: Rendezvous::new(
                TableLimits {
                    waiting_per_address: limits.waiting_per_address,
                    remembered: limits.remembered_nameplates,
                },
                metrics.table.clone(),
            )
            .for_relay(config.fleet.id),
            tickets: secret.tickets(),
            claims: RateLimiter::per_minute(limits.claims_per_minute),
            opens: RateLimiter::per_minute(limits.opens_per_minute),
            connections: ConnectionLimiter::new(limits.connections_per_address),
            metrics,
            mint,
            parked,
            arrivals,
            teller,
            config,
        });
        Ok(Relay {
            endpoint,
            fingerprint,
            shared,
            forwarder: Some(forwarder),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, RelayError> {
        self.endpoint.local_addr().map_err(|e| RelayError::Bind {
            addr: self.shared.config.listen,
            reason: e.to_string(),
        })
    }

    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Serves until `shutdown` completes, then closes every connection and
    /// waits briefly for peers to be told.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let forwarder = self.forwarder.take().map(|f| tokio::spawn(f.run()));
        let sweeper = {
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SWEEP_EVERY);
                loop {
                    tick.tick().await;
                    shared.rendezvous.sweep();
                    shared.claims.sweep();
                    shared.opens.sweep();
                }
            })
        };
        // Every connection's handler belongs to the relay: on shutdown the
        // relay waits for them, and stops those still running after that.
        let mut handlers = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                incoming = self.endpoint.accept() => {
                    let Some(incoming) = incoming else { break };
                    self.admit(incoming, &mut handlers);
                }
                // Finished handlers are collected as they end.
                Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
                () = &mut shutdown => break,
            }
        }
        info!("relay shutting down");
        sweeper.abort();
        // Agents waiting apart hear it now, not after their silence; twice,
        // as one datagram may be lost.
        let closing = self.shared.parked.closing();
        for tell in closing.iter().chain(&closing) {
            self.shared.teller.tell(tell);
        }
        self.endpoint.close(0u32.into(), b"relay shutting down");
        let _ = tokio::time::timeout(LINGER, async {
            self.endpoint.wait_idle().await;
            while handlers.join_next().await.is_some() {}
        })
        .await;
        handlers.shutdown().await;
        if let Some(forwarder) = forwarder {
            forwarder.abort();
            let _ = forwarder.await;
        }
    }

    fn admit(&self, incoming: Incoming, handlers: &mut JoinSet<()>) {
        let limits = &self.shared.config.limits;
        if self.endpoint.open_connections() >= limits.max_connections {
            self.shared.metrics.refused(ErrorCode::Busy);
            incoming.refuse();
            return;
        }
        let peer = incoming.remote_address();
        let key = limit_key(peer.ip());
        let held = self.shared.connections.held(key);
        if !incoming.remote_address_validated() && held * 2 >= limits.connections_per_address {
            // Past half its share, a source must first prove it receives at
            // its address (a stateless retry), so packets with a forged
            // source cannot use up someone else's places.
            if let Err(e) = incoming.retry() {
                e.into_incoming().refuse();
            }
            return;
        }
        let Some(slot) = self.shared.connections.acquire(key) else {
            // Refused before the handshake, so it costs no cryptography;
            // the client is told the connection was refused.
            debug!(%key, "too many connections from this address");
            self.shared.metrics.limited(Limit::ConnectionsPerAddress);
            incoming.refuse();
            return;
        };
        let shared = self.shared.clone();
        // Boxed, as are the handler's passing states (the handshake, the
        // request, a refusal): the task then holds little more than what a
        // waiting agent needs, for as long as it waits.
        let handshake = Box::pin(tokio::time::timeout(
            limits.handshake_timeout,
            incoming.into_future(),
        ));
        handlers.spawn(
            async move {
                shared.metrics.connections.inc();
                shared.metrics.connections_open.inc();
                let result = handle(handshake, &shared, key, slot).await;
                shared.metrics.connections_open.dec();
                if let Err(e) = result {
                    debug!("connection ended: {e}");
                }
            }
            .instrument(info_span!("conn", %peer)),
        );
    }
}

async fn handle(
    handshake: Pin<Box<Timeout<IncomingFuture>>>,
    shared: &Shared,
    key: LimitKey,
    slot: ConnectionSlot,
) -> Result<(), RelayError> {
    let connection = handshake.await.map_err(|_| RelayError::Timeout)??;
    let watch = connection.clone();
    // Watches only while the connection lives: an agent that waits apart
    // closes it, and the handle is then dropped, so quinn can free the
    // connection's state while the handler waits on.
    let closed = async move {
        if broke_limits(&watch.closed().await) {
            debug!("closed a peer that broke the stream or window limits");
            shared.metrics.limited(Limit::Streams);
        }
    };
    let serve = serve_connection(connection, shared, key, slot);
    tokio::pin!(closed, serve);
    tokio::select! {
        biased;
        () = &mut closed => serve.await,
        result = &mut serve => {
            // A connection closed as its handler ended is still looked at:
            // the first poll of `closed` then sees its reason.
            let _ = tokio::time::timeout(Duration::ZERO, &mut closed).await;
            result
        }
    }
}

/// Whether quinn closed the connection because the peer opened streams or
/// sent data beyond what the relay allowed.
fn broke_limits(e: &ConnectionError) -> bool {
    matches!(
        e,
        ConnectionError::TransportError(t)
            if t.code == TransportErrorCode::STREAM_LIMIT_ERROR
                || t.code == TransportErrorCode::FLOW_CONTROL_ERROR
                || t.code == TransportErrorCode::STREAM_STATE_ERROR
    )
}

async fn serve_connection(
    connection: Connection,
    shared: &Shared,
    key: LimitKey,
    slot: ConnectionSlot,
) -> Result<(), RelayError> {
    let handshake = shared.config.limits.handshake_timeout;
    let accepted = Box::pin(tokio::time::timeout(handshake, connection.accept_bi())).await;
    let (send, recv) = match accepted {
        Ok(stream) => stream?,
        Err(_) => {
            // No stream to put an error frame on: say it in the close reason.
            shared.metrics.refused(ErrorCode::Timeout);
            connection.close(1u32.into(), b"no request within the handshake time");
            return Err(RelayError::Timeout);
        }
    };
    let mut reader = FrameReader::with_limit(recv, shared.config.limits.control_frame);
    let writer = FrameWriter::new(send);

    let opening = Box::pin(tokio::time::timeout(handshake, async {
        let hello: Hello = reader.expect_msg().await?;
        if hello.version != PROTOCOL_VERSION {
            return Ok(Err((hello.version, hello.role)));
        }
        let request: ClientMsg = reader.expect_msg().await?;
        Ok::<_, FrameError>(Ok((hello.role, request)))
    }))
    .await;
    let (role, request) = match opening {
        Err(_) => {
            let frame = ErrorFrame::new(
                ErrorCode::Timeout,
                "no request within the handshake time; the relay closed the connection",
            );
            return Box::pin(refuse(shared, &connection, writer, frame)).await;
        }
        Ok(Err(e)) => {
            if matches!(e, FrameError::TooLarge { .. }) {
                shared.metrics.limited(Limit::ControlFrame);
            }
            let frame = ErrorFrame::new(
                ErrorCode::ProtocolViolation,
                format!("the relay could not read the request: {e}"),
            );
            return Box::pin(refuse(shared, &connection, writer, frame)).await;
        }
        Ok(Ok(Err((version, _)))) => {
            let frame = ErrorFrame::new(
                ErrorCode::VersionMismatch,
                version_mismatch(PROTOCOL_VERSION, version),
            );
            return Box::pin(refuse(shared, &connection, writer, frame)).await;
        }
        Ok(Ok(Ok(opening))) => opening,
    };
    match (role, request) {
        (Role::Agent, ClientMsg::Open) => {
            let link = AgentLink {
                connection,
                reader,
                writer,
                slot,
            };
            Box::pin(agent(shared, link, key, None)).await
        }
        (Role::Agent, ClientMsg::Reopen { ticket }) => {
            let link = AgentLink {
                connection,
                reader,
                writer,
                slot,
            };
            Box::pin(agent(shared, link, key, Some(ticket))).await
        }
        (
            Role::Console,
            ClientMsg::Claim {
                nameplate,
                technician,
                token,
            },
        ) => {
            Box::pin(console(
                shared, connection, key, slot, reader, writer, nameplate, technician, token,
            ))
            .await
        }
        (role, _) => {
            let frame = ErrorFrame::new(
                ErrorCode::WrongRole,
                format!("a {role:?} cannot make that request"),
            );
            Box::pin(refuse(shared, &connection, writer, frame)).await
        }
    }
}

/// Sends an error frame, finishes the stream, and gives the peer a moment
/// to read it before the connection closes.
async fn refuse(
    shared: &Shared,
    connection: &Connection,
    mut writer: Writer,
    frame: ErrorFrame,
) -> Result<(), RelayError> {
    debug!(code = ?frame.code, "refusing: {}", frame.message);
    shared.metrics.refused(frame.code);
    let _ = writer.write_msg(&RelayMsg::Error(frame)).await;
    let _ = writer.get_mut().finish();
    let _ = tokio::time::timeout(LINGER, connection.closed()).await;
    connection.close(1u32.into(), b"refused");
    Ok(())
}

/// An agent's connection and control stream.
struct AgentLink {
    connection: Connection,
    reader: Reader,
    writer: Writer,
    // Counts against the agent's address while the connection lives.
    slot: ConnectionSlot,
}

/// How an agent's wait for a claim ended.
enum Waited {
    /// The agent closed its connection to wait apart.
    Apart,
    Gone(ClaimError),
}

async fn agent(
    shared: &Shared,
    mut link: AgentLink,
    key: LimitKey,
    reopen: Option<sprijin_proto::waiting::WaitingTicket>,
) -> Result<(), RelayError> {
    if let Some(pairing) = reopen.as_ref().and_then(|t| returning(shared, t)) {
        // Back on a connection for a claim made while it waited apart:
        // its waits went unanswered, so it hears of the claim here.
        return Box::pin(hand_over(shared, link, pairing)).await;
    }
    if !shared.opens.allow(key) {
        shared.metrics.limited(Limit::OpensPerMinute);
        let frame = ErrorFrame::new(
            ErrorCode::RateLimited,
            format!(
                "too many codes asked for from this address: at most {} a minute; wait a minute and try again",
                shared.config.limits.opens_per_minute
            ),
        );
        return Box::pin(refuse(shared, &link.connection, link.writer, frame)).await;
    }
    let admitted = crate::waiting::admit(
        &shared.rendezvous,
        &shared.tickets,
        shared.config.fleet.id,
        key,
        reopen.as_ref(),
        shared.config.limits.nameplate_ttl,
    );
    let (nameplate, entry, claimed, ttl, ticket) = match admitted {
        Ok(a) => (
            a.opened.nameplate,
            a.opened.entry,
            a.opened.claimed,
            a.ttl,
            a.ticket,
        ),
        Err(frame) => return Box::pin(refuse(shared, &link.connection, link.writer, frame)).await,
    };
    let span = info_span!("nameplate", %nameplate);
    async move {
        shared.metrics.nameplates_opened.inc();
        shared.metrics.nameplates_waiting.inc();
        let expires_at = ticket.expires_at;
        let deadline = tokio::time::Instant::now() + ttl;
        // Kept before the agent hears its code, so its first wait finds it.
        let stirred = shared.parked.keep(nameplate, entry, expires_at);
        let opened = Box::pin(link.writer.write_msg(&RelayMsg::Opened {
            nameplate,
            expires_in_secs: ttl.as_secs(),
            ticket,
        }))
        .await;
        let waited = if opened.is_err() {
            Waited::Gone(ClaimError::Left)
        } else {
            // Every agent parks once it has its code. A claim that comes
            // before its connection has closed stays in `claimed`, for the
            // agent to be told of apart: the connection is on its way out.
            tokio::select! {
                reason = link.connection.closed() => if waits_apart(&reason) {
                    Waited::Apart
                } else {
                    Waited::Gone(ClaimError::Left)
                },
                () = tokio::time::sleep_until(deadline) => Waited::Gone(ClaimError::Expired),
            }
        };
        if !matches!(waited, Waited::Apart) {
            shared.parked.forget(nameplate, entry);
            shared.metrics.nameplates_waiting.dec();
        }
        match waited {
            Waited::Apart => {
                // The connection is gone; what the agent costs the relay
                // from now on is this task and its parked entry.
                drop(link);
                shared.metrics.connections_open.dec();
                let spot = Spot {
                    nameplate,
                    entry,
                    deadline,
                };
                wait_apart(shared, spot, claimed, &stirred).await;
                // Counted out by the handler, as if the connection ended now.
                shared.metrics.connections_open.inc();
                Ok(())
            }
            Waited::Gone(why) => {
                shared.rendezvous.retire(nameplate, entry, why);
                if why == ClaimError::Expired {
                    info!("nameplate expired unclaimed");
                    let frame = ErrorFrame::new(
                        ErrorCode::ExpiredNameplate,
                        format!(
                            "the code expired after {} s unclaimed: start sharing again for a new code",
                            shared.config.limits.nameplate_ttl.as_secs()
                        ),
                    );
                    return Box::pin(refuse(shared, &link.connection, link.writer, frame)).await;
                }
                Ok(())
            }
        }
    }
    .instrument(span)
    .await
}

/// Whether an agent's connection ended so that it may still wait apart:
/// it said so, or the connection was lost (if the agent is gone, its
/// silence retires the code).
fn waits_apart(reason: &ConnectionError) -> bool {
    match reason {
        ConnectionError::ApplicationClosed(c) => c.error_code == close_code::PARKED.into(),
        ConnectionError::TimedOut | ConnectionError::Reset => true,
        _ => false,
    }
}

/// A code whose agent waits apart from its connection.
struct Spot {
    nameplate: Nameplate,
    entry: EntryId,
    /// When the code expires.
    deadline: tokio::time::Instant,
}

/// Waits, for an agent waiting apart, until its code is claimed (then
/// pairs the two), expires, or the agent leaves or goes silent.
async fn wait_apart(
    shared: &Shared,
    spot: Spot,
    mut claimed: tokio::sync::oneshot::Receiver<Claimed>,
    stirred: &tokio::sync::Notify,
) {
    let Spot {
        nameplate,
        entry,
        deadline,
    } = spot;
    let waited = tokio::select! {
        claim = &mut claimed => claim.map_err(|_| ClaimError::Left),
        () = tokio::time::sleep_until(deadline) => Err(ClaimError::Expired),
        () = absent(&shared.parked, nameplate, stirred) => Err(ClaimError::Left),
    };
    shared.metrics.nameplates_waiting.dec();
    match waited {
        Ok(claim) => pair(shared, nameplate, claim).await,
        Err(why) => {
            if why == ClaimError::Expired {
                info!("nameplate expired unclaimed");
            }
            shared.rendezvous.retire(nameplate, entry, why);
        }
    }
    shared.parked.forget(nameplate, entry);
}

/// Completes when the agent waiting apart with `nameplate` said it leaves,
/// or has not been heard from for [`ABSENT_AFTER`].
async fn absent(parked: &Parked, nameplate: Nameplate, stirred: &tokio::sync::Notify) {
    loop {
        let Some(heard) = parked.heard(nameplate) else {
            return;
        };
        let deadline = heard + ABSENT_AFTER;
        if deadline <= tokio::time::Instant::now() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = stirred.notified() => {}
        }
    }
}

/// Pairs a claim with its agent waiting apart. The console hears at once
/// and starts its end-to-end connection, which the forwarder holds for the
/// agent; the agent is told, its side of the session sealed into the
/// answer, again and again until that side binds at the forwarder. If it
/// has not within [`RETURN_WITHIN`], the console is told the agent did not
/// come. Then the console's control connection is kept until the console
/// closes it, with a code that says how set-up went.
async fn pair(shared: &Shared, nameplate: Nameplate, claim: Claimed) {
    let Claimed {
        session,
        agent_ticket,
        console_ticket,
        technician,
        at: claimed_at,
        mut console_writer,
        _console_reader,
        connection,
        _slot,
    } = claim;
    let told = Box::pin(console_writer.write_msg(&RelayMsg::Paired {
        technician: None,
        ticket: console_ticket,
    }))
    .await;
    if told.is_err() {
        info!("the console left as it was paired");
        shared.metrics.ended(Outcome::Lost);
        return;
    }
    let arrived = shared.arrivals.expect(session);
    shared.parked.claimed(
        nameplate,
        Pairing {
            ticket: agent_ticket,
            technician,
        },
    );
    tokio::pin!(arrived);
    let until = tokio::time::Instant::now() + RETURN_WITHIN;
    loop {
        if let Some(tell) = shared.parked.tell_claimed(nameplate) {
            shared.teller.tell(&tell);
        }
        tokio::select! {
            _ = &mut arrived => break,
            () = tokio::time::sleep(TELL_EVERY) => {}
            _ = connection.closed() => {
                shared.arrivals.forget(session);
                info!("the console left before the agent came");
                shared.metrics.ended(Outcome::Lost);
                return;
            }
        }
        if tokio::time::Instant::now() >= until {
            shared.arrivals.forget(session);
            info!("the agent did not come for its claim");
            let frame = ErrorFrame::new(
                ErrorCode::Timeout,
                format!(
                    "the person's agent did not come for the claim within {} s: it may have closed; ask the person to share again",
                    RETURN_WITHIN.as_secs()
                ),
            );
            let _ = refuse_claim(shared, &connection, console_writer, frame).await;
            return;
        }
    }
    info!("paired");
    shared.metrics.sessions.inc();
    shared.metrics.sessions_active.inc();
    let _ = console_writer.get_mut().finish();
    // The session now runs end to end over the forwarder. The console's
    // control connection stays until the console closes it, for at most
    // the handshake time, with a code that says how set-up went.
    let deadline = tokio::time::Instant::now() + shared.config.limits.handshake_timeout;
    let closed = tokio::time::timeout_at(deadline, connection.closed())
        .await
        .is_ok();
    let outcome = if closed {
        shared
            .metrics
            .setup_seconds
            .observe(claimed_at.elapsed().as_secs_f64());
        session_outcome(&connection.close_reason())
    } else {
        // The console never said how set-up ended: it did not finish in
        // the handshake time.
        Outcome::Idle
    };
    shared.metrics.ended(outcome);
    info!(?outcome, "handed over to the data path");
    shared.metrics.sessions_active.dec();
    connection.close(0u32.into(), b"paired");
}

/// The claim's pairing for an agent presenting `ticket`, if any.
fn returning(shared: &Shared, ticket: &sprijin_proto::waiting::WaitingTicket) -> Option<Pairing> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    shared.tickets.check(ticket, now).ok()?;
    shared.parked.pairing(ticket.nameplate, ticket.expires_at)
}

/// Gives an agent back on a connection its side of the claimed session,
/// and keeps the connection until the agent closes it, for at most the
/// handshake time.
async fn hand_over(shared: &Shared, link: AgentLink, pairing: Pairing) -> Result<(), RelayError> {
    let AgentLink {
        connection,
        reader: _reader,
        mut writer,
        slot: _slot,
    } = link;
    Box::pin(writer.write_msg(&RelayMsg::Paired {
        technician: Some(pairing.technician),
        ticket: pairing.ticket,
    }))
    .await?;
    let _ = writer.get_mut().finish();
    let _ = tokio::time::timeout(shared.config.limits.handshake_timeout, connection.closed()).await;
    connection.close(0u32.into(), b"paired");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn console(
    shared: &Shared,
    connection: Connection,
    key: LimitKey,
    slot: ConnectionSlot,
    reader: Reader,
    writer: Writer,
    nameplate: sprijin_proto::code::Nameplate,
    claimed_name: String,
    token: Option<String>,
) -> Result<(), RelayError> {
    let claimed_at = tokio::time::Instant::now();
    if let Some(answer) = shared.config.fleet.elsewhere(nameplate) {
        crate::fleet::send_away(&shared.metrics, &connection, writer, answer).await;
        return Ok(());
    }
    if !shared.claims.allow(key) {
        shared.metrics.limited(Limit::ClaimsPerMinute);
        let frame = ErrorFrame::new(
            ErrorCode::RateLimited,
            format!(
                "too many claims from this address: at most {} a minute; wait a minute and try again",
                shared.config.limits.claims_per_minute
            ),
        );
        return refuse_claim(shared, &connection, writer, frame).await;
    }
    let technician = match (&shared.config.console_tokens, token) {
        (None, _) => Technician {
            name: sanitize_name(&claimed_name),
            vouched: false,
        },
        (Some(tokens), Some(token)) => match tokens.name_for(&token) {
            Some(name) => Technician {
                name: name.to_string(),
                vouched: true,
            },
            None => {
                return unauthorized(shared, &connection, writer, "is not on this relay's list")
                    .await;
            }
        },
        (Some(_), None) => {
            return unauthorized(shared, &connection, writer, "is missing").await;
        }
    };
    let sessions = shared
        .metrics
        .sessions_active
        .get()
        .max(shared.metrics.forwarding_entries.get());
    if sessions as usize >= shared.config.limits.max_sessions {
        let frame = ErrorFrame::new(
            ErrorCode::Busy,
            "the relay is at its session limit: try again later",
        );
        return refuse_claim(shared, &connection, writer, frame).await;
    }
    let handoff = match shared.rendezvous.claim(nameplate) {
        Ok(handoff) => handoff,
        Err(e) => {
            warn!(%nameplate, "claim refused: {e}");
            return refuse_claim(shared, &connection, writer, e.frame()).await;
        }
    };
    let (session, agent_ticket, console_ticket) = issue_tickets(shared);
    let claim = Claimed {
        session,
        agent_ticket,
        console_ticket,
        technician,
        at: claimed_at,
        console_writer: writer,
        _console_reader: reader,
        connection,
        _slot: slot,
    };
    // If the agent left at this very moment, dropping the claim ends the
    // console's control stream unanswered, which it reports as the agent
    // having gone.
    let _ = handoff.send(claim);
    Ok(())
}

async fn unauthorized(
    shared: &Shared,
    connection: &Connection,
    writer: Writer,
    what: &str,
) -> Result<(), RelayError> {
    let frame = ErrorFrame::new(
        ErrorCode::Unauthorized,
        format!(
            "this relay only accepts listed technicians and the console's token {what}: pass --token or set SPRIJIN_TOKEN"
        ),
    );
    refuse_claim(shared, connection, writer, frame).await
}

/// Refuses a console's claim, counted as a claim refused and a session
/// that ended before it began.
async fn refuse_claim(
    shared: &Shared,
    connection: &Connection,
    writer: Writer,
    frame: ErrorFrame,
) -> Result<(), RelayError> {
    shared.metrics.claim_refused(frame.code);
    refuse(shared, connection, writer, frame).await
}

/// How a paired session's set-up ended, from what the relay can see: the
/// close code of the console's control connection. The session itself
/// runs over the forwarder, where the relay sees only datagrams.
fn session_outcome(console: &Option<ConnectionError>) -> Outcome {
    let code = |e: &Option<ConnectionError>| match e {
        Some(ConnectionError::ApplicationClosed(c)) => Some(c.error_code.into_inner()),
        _ => None,
    };
    // Closed by the peer, or still open at the deadline (then the relay
    // closes it): neither is a loss. A transport error or timeout is.
    let lost = |e: &Option<ConnectionError>| {
        !matches!(
            e,
            None | Some(ConnectionError::LocallyClosed | ConnectionError::ApplicationClosed(_))
        )
    };
    if code(console) == Some(close_code::WRONG_CODE.into()) {
        Outcome::WrongCode
    } else if lost(console) {
        Outcome::Lost
    } else {
        Outcome::Completed
    }
}

/// Keeps a self-declared name printable and short, since it is shown to the
/// person on their terminal.
fn sanitize_name(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if clean.trim().is_empty() {
        "unnamed technician".to_string()
    } else {
        clean.trim().to_string()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
    #[error("cannot set up tls: {0}")]
    Tls(#[source] tls::TlsError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("peer did not finish the handshake in time")]
    Timeout,
    #[error("peer connection failed: {0}")]
    Peer(#[from] ConnectionError),
    #[error("peer connection failed: {0}")]
    PeerStream(#[from] FrameError),
}

/// A new session's id and its two tickets: the agent's and the console's.
fn issue_tickets(shared: &Shared) -> (u64, Ticket, Ticket) {
    let session = rand::random::<u64>();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let expires_at = now.saturating_add(shared.config.limits.ticket_ttl.as_secs());
    (
        session,
        shared.mint.issue(session, PathSide::Agent, expires_at),
        shared.mint.issue(session, PathSide::Console, expires_at),
    )
}
