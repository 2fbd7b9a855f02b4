//! The console's side of a session: claim the code at the relay, connect to
//! the agent end to end through the relay's forwarder and run the handshake,
//! close the relay connection, wait for the person's yes, then send requests
//! and route the agent's answers back to whoever asked.
//!
//! A console that will show a snapshot first (the terminal interface, or
//! `--exec` beginning with one) asks for it with its opening, right after
//! saying who the technician is. The agent reads no request before the
//! person has answered, and none at all after a no; after a yes the snapshot
//! follows the welcome at once, a round trip sooner than asking after it.
//!
//! A reader task owns the control stream and delivers each answer to the
//! channel of the request it names; another accepts the stream the agent
//! opens for each run, question and transfer and reads each in a task of its
//! own; a writer task owns the sending half of the control stream. So a run
//! can stream while a diagnostics request is answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, RecvStream};
use sprijin_proto::client::{ConnectError, LinkError, RelayLink};
use sprijin_proto::code::SessionCode;
use sprijin_proto::e2e::{self, E2eError, Established};
use sprijin_proto::framing::FrameError;
use sprijin_proto::message::control::{ErrorFrame, Role, close_code};
use sprijin_proto::message::session::{AgentMsg, ConsoleMsg, Request, RequestId};
use sprijin_proto::path::direct::{PathChange, Policy};
use sprijin_proto::path::{PathError, RelayedPath};
use sprijin_proto::text::clean_line;
use sprijin_proto::tls::{self, Fingerprint, SessionIdentity, TlsError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::credential_tool::HeldCredential;

/// A session the person allowed: both halves, the host's name and how the
/// agent shows the technician.
type Opened = (Established, String, Option<ShownIdentity>);

/// Where each request's answers go, by request id.
type Routes = Arc<Mutex<HashMap<RequestId, mpsc::Sender<AgentMsg>>>>;

/// Answers to one request; ends after the final one.
pub type Replies = mpsc::Receiver<AgentMsg>;

/// How many answers may queue per request before the reader waits.
const REPLY_QUEUE: usize = 256;

/// How long a console whose session failed to start waits for its close
/// to be sent.
const SETUP_LINGER: Duration = Duration::from_secs(2);

/// How long the end-to-end connection and its handshake may take.
const SETUP_WAIT: Duration = Duration::from_secs(30);

/// How long, after the agent's goodbye, the answers still on their own
/// streams may take to arrive.
const STREAMS_DRAIN: Duration = Duration::from_secs(2);

/// The id of the snapshot asked for with the opening.
const AHEAD_ID: RequestId = 1;

pub struct ConnectOptions {
    pub relay: String,
    pub relay_fingerprint: Option<Fingerprint>,
    pub technician: String,
    pub token: Option<String>,
    /// How long the session may hear nothing from the agent before the
    /// connection counts as lost.
    pub session_idle_timeout: Duration,
    /// Whether the session may move to a direct path to the agent.
    pub direct: Policy,
}

/// How the agent shows the technician to the person, as the agent said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownIdentity {
    /// True when the agent accepted the technician's credential.
    pub verified: bool,
    /// The line the person sees, cleaned for this terminal.
    pub shown: String,
    /// Why the name is not verified, cleaned for this terminal.
    pub reason: Option<String>,
}

/// The head of the agent's audit log as it last reported it: the seq and
/// hash of its last line, shown as `SEQ:HASH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

impl std::fmt::Display for AuditHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

/// An established, approved session.
pub struct Session {
    pub host: String,
    pub verification: String,
    /// How the agent shows the technician; `None` from an agent that does
    /// not say.
    pub identity: Option<ShownIdentity>,
    outbox: mpsc::Sender<ConsoleMsg>,
    pending: Routes,
    ended: watch::Receiver<Option<String>>,
    audit_head: watch::Receiver<Option<AuditHead>>,
    /// Every change of the session's path, in order; empty while it has
    /// always gone through the relay.
    path_changes: watch::Receiver<Vec<PathChange>>,
    next_id: AtomicU32,
    /// Answers to the snapshot asked for with the opening, until the first
    /// diagnostics request takes them.
    ahead: Mutex<Option<Replies>>,
    writer: tokio::task::JoinHandle<()>,
    /// The readers of the agent's messages.
    tasks: JoinSet<()>,
    connection: Connection,
    // Kept so the endpoint lives as long as the session.
    path: RelayedPath,
}

impl Session {
    /// Claims `code`, runs the handshake and waits for the person to allow
    /// the session.
    pub async fn connect(
        code: &SessionCode,
        opts: &ConnectOptions,
    ) -> Result<Session, SessionError> {
        Self::connect_with(code, opts, None, false).await
    }

    /// Like [`connect`](Self::connect), proving the technician's name with
    /// `credential` inside the end-to-end channel. With `snapshot_ahead`,
    /// asks for a snapshot with the opening: the first
    /// [`Request::Diagnostics`] then gets its answer without asking again.
    pub async fn connect_with(
        code: &SessionCode,
        opts: &ConnectOptions,
        credential: Option<&HeldCredential>,
        snapshot_ahead: bool,
    ) -> Result<Session, SessionError> {
        // The session's own TLS identity is made while the claim is on its
        // way: the claim goes out first, and the relay's answer waits for
        // nothing but the network.
        let prepare = async {
            let identity = SessionIdentity::generate()?;
            let client = tls::session_client_config(&identity, opts.session_idle_timeout)?;
            Ok::<_, TlsError>((identity, client))
        };
        let (claimed, prepared) = tokio::join!(crate::redirect::claim(code, opts), prepare);
        let (mut link, ticket) = claimed?;
        let (identity, client) = prepared.map_err(SessionError::Tls)?;
        // The session's connection goes to the address the relay answered on.
        let relay = link.connection.remote_address();
        let path = RelayedPath::new(relay, ticket, None).map_err(SessionError::Path)?;
        let set_up = tokio::time::timeout(SETUP_WAIT, async {
            let connecting = path
                .endpoint()
                .connect_with(client, path.relay(), "sprijin-session")
                .map_err(|e| E2eError::Connection(e.to_string()))?;
            let connection = connecting
                .await
                .map_err(|e| E2eError::Connection(e.to_string()))?;
            e2e::establish(Role::Console, code, connection, &identity).await
        });
        // The relay pairs at once and tells the agent after; if the agent
        // never comes, the relay says so on the control stream.
        let set_up = tokio::select! {
            set_up = set_up => set_up.unwrap_or_else(|_| {
                Err(E2eError::Connection(format!(
                    "the agent did not answer within {} s",
                    SETUP_WAIT.as_secs()
                )))
            }),
            frame = refusal(&mut link) => return Err(LinkError::Refused(frame).into()),
        };
        // The relay connection has done its work: close it.
        link.close_after_set_up(&set_up);
        let relay_endpoint = link.endpoint.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(SETUP_LINGER, relay_endpoint.wait_idle()).await;
        });
        let established = set_up.map_err(|e| {
            if e.is_wrong_code() {
                SessionError::WrongCode
            } else if e.is_gone() {
                SessionError::AgentGone
            } else {
                SessionError::Setup(e)
            }
        });
        let opened = match established {
            Ok(established) => Self::handshake(credential, established, snapshot_ahead).await,
            Err(e) => Err(e),
        };
        let (established, host, identity) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                let _ = tokio::time::timeout(SETUP_LINGER, path.endpoint().wait_idle()).await;
                return Err(e);
            }
        };
        let connection = established.connection.clone();
        let mut reader = established.reader;

        let (outbox, mut outbox_rx) = mpsc::channel::<ConsoleMsg>(64);
        let mut writer = established.writer;
        let writer = tokio::spawn(async move {
            while let Some(msg) = outbox_rx.recv().await {
                if writer.write_msg(&msg).await.is_err() {
                    break;
                }
            }
            let _ = writer.get_mut().finish();
        });
        let pending: Routes = Arc::default();
        // The answer to the snapshot asked ahead can only follow the
        // welcome, and its route is in place before anything reads.
        let ahead = snapshot_ahead.then(|| {
            let (tx, rx) = mpsc::channel(REPLY_QUEUE);
            pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(AHEAD_ID, tx);
            rx
        });
        let (ended_tx, ended) = watch::channel(None);
        let (head_tx, audit_head) = watch::channel(None);
        let routes = pending.clone();
        let reader_conn = connection.clone();
        // The reader belongs to the session: closing it waits for the
        // reader, and dropping it stops the reader.
        let mut tasks = JoinSet::new();
        // How many of the agent's request streams are being read.
        let (open_tx, mut open_streams) = watch::channel(0usize);
        tasks.spawn(accept_streams(connection.clone(), pending.clone(), open_tx));
        let (path_tx, path_changes) = watch::channel(Vec::new());
        if opts.direct == Policy::Allow {
            tasks.spawn(follow_path(path.direct(), connection.clone(), path_tx));
        }
        tasks.spawn(async move {
            let reason = loop {
                match reader.read_msg::<AgentMsg>().await {
                    Ok(Some(AgentMsg::Bye { reason })) => {
                        // The agent finished its request streams before
                        // saying goodbye: let what they hold arrive.
                        let _ = tokio::time::timeout(STREAMS_DRAIN, async {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            let _ = open_streams.wait_for(|n| *n == 0).await;
                        })
                        .await;
                        break reason;
                    }
                    Ok(Some(AgentMsg::AuditHead { seq, hash })) => {
                        // The log only grows during a session: a head that
                        // arrives late never replaces a newer one.
                        head_tx.send_if_modified(|head| {
                            let newer = head.as_ref().is_none_or(|h: &AuditHead| seq > h.seq);
                            if newer {
                                *head = Some(AuditHead { seq, hash });
                            }
                            newer
                        });
                    }
                    Ok(Some(msg)) => route(&routes, msg).await,
                    // Only the agent's goodbye ends a session: a stream
                    // that just stops is not an answer.
                    Ok(None) => {
                        break "the connection was lost: the agent's stream ended without a goodbye"
                            .to_string();
                    }
                    Err(e) => {
                        break format!(
                            "the connection was lost: {}",
                            lost_reason(&reader_conn, &e)
                        );
                    }
                }
            };
            // The reason goes out first: a request woken by its route being
            // dropped asks `ended()` why, and must find the answer there.
            let _ = ended_tx.send(Some(reason));
            // Dropping the routes ends every waiting request.
            routes.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(Session {
            host,
            verification: established.verification,
            identity,
            outbox,
            pending,
            ended,
            audit_head,
            path_changes,
            next_id: AtomicU32::new(if snapshot_ahead { AHEAD_ID + 1 } else { 1 }),
            ahead: Mutex::new(ahead),
            writer,
            tasks,
            connection,
            path,
        })
    }

    /// Says who the technician is on the authenticated connection, and
    /// waits for the agent's welcome: the host's name once the person said
    /// yes.
    async fn handshake(
        credential: Option<&HeldCredential>,
        mut established: Established,
        snapshot_ahead: bool,
    ) -> Result<Opened, SessionError> {
        // First message: the credential, with a proof bound to this
        // session's keys, so it cannot be replayed into another session.
        let presentation = credential.map(|c| Box::new(c.present(&established.binding)));
        established
            .writer
            .write_msg(&ConsoleMsg::Identify { presentation })
            .await
            .map_err(|_| SessionError::AgentGone)?;
        if snapshot_ahead {
            established
                .writer
                .write_msg(&ConsoleMsg::Request {
                    id: AHEAD_ID,
                    request: Request::Diagnostics,
                })
                .await
                .map_err(|_| SessionError::AgentGone)?;
        }
        let mut identity = None;
        let welcome = loop {
            let msg = established
                .reader
                .read_msg::<AgentMsg>()
                .await
                .map_err(|e| match e {
                    FrameError::Closed | FrameError::Io(_) | FrameError::Truncated => {
                        SessionError::AgentGone
                    }
                    other => SessionError::Stream(other),
                })?;
            match msg {
                Some(AgentMsg::Identity {
                    verified,
                    shown,
                    reason,
                }) => {
                    identity = Some(ShownIdentity {
                        verified,
                        shown: clean_line(&shown).into_owned(),
                        reason: reason.map(|r| clean_line(&r).into_owned()),
                    });
                }
                other => break other,
            }
        };
        match welcome {
            Some(AgentMsg::Welcome {
                host,
                granted: true,
            }) => Ok((established, host, identity)),
            Some(AgentMsg::Welcome { granted: false, .. }) => Err(SessionError::Declined),
            Some(AgentMsg::Bye { reason }) => Err(SessionError::Ended(reason)),
            Some(other) => Err(SessionError::Protocol(format!(
                "expected a welcome, got {other:?}"
            ))),
            None => Err(SessionError::AgentGone),
        }
    }

    /// Sends a request; its answers arrive on the returned channel. The
    /// first diagnostics request takes the answer to the snapshot asked for
    /// with the opening, if there was one.
    pub async fn request(&self, request: Request) -> Result<(RequestId, Replies), SessionError> {
        if let Some(reason) = self.ended() {
            return Err(SessionError::Ended(reason));
        }
        if matches!(request, Request::Diagnostics)
            && let Some(replies) = self.ahead.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            return Ok((AHEAD_ID, replies));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(REPLY_QUEUE);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        self.outbox
            .send(ConsoleMsg::Request { id, request })
            .await
            .map_err(|_| {
                SessionError::Ended(
                    self.ended()
                        .unwrap_or_else(|| "the session is closed".into()),
                )
            })?;
        Ok((id, rx))
    }

    /// Why the session ended, once it has.
    pub fn ended(&self) -> Option<String> {
        self.ended.borrow().clone()
    }

    /// Follows the session's path: every change, in order; empty while it
    /// has always gone through the relay.
    pub fn path(&self) -> watch::Receiver<Vec<PathChange>> {
        self.path_changes.clone()
    }

    /// Follows the head of the agent's audit log; `None` until it is sent.
    pub fn audit_head(&self) -> watch::Receiver<Option<AuditHead>> {
        self.audit_head.clone()
    }

    /// Completes when the agent ends the session.
    pub async fn wait_ended(&self) -> String {
        let mut ended = self.ended.clone();
        loop {
            if let Some(reason) = ended.borrow_and_update().clone() {
                return reason;
            }
            if ended.changed().await.is_err() {
                return "the session is closed".into();
            }
        }
    }

    /// Says goodbye and closes everything cleanly.
    pub async fn close(self) {
        let _ = self.outbox.send(ConsoleMsg::Bye).await;
        drop(self.outbox);
        let mut ended = self.ended.clone();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.writer).await;
        // The agent answers with its final audit head, then its goodbye.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while ended.borrow_and_update().is_none() {
                if ended.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(2), self.connection.closed()).await;
        self.connection.close(close_code::ENDED.into(), b"bye");
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            self.path.endpoint().wait_idle(),
        )
        .await;
        // With the connection closed the reader ends at once; one still
        // running after that is stopped when `tasks` is dropped.
        let mut tasks = self.tasks;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
}

/// Delivers one of the agent's answers to the request it names.
async fn route(routes: &Routes, msg: AgentMsg) {
    let Some(id) = msg.request_id() else { return };
    let last = msg.is_final();
    let route = routes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned();
    if let Some(route) = route {
        let _ = route.send(msg).await;
    }
    if last {
        routes.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// Moves the session to a direct path when one answers, and back when it
/// stops, publishing each change.
async fn follow_path(
    direct: sprijin_proto::path::direct::Direct,
    connection: Connection,
    published: watch::Sender<Vec<PathChange>>,
) {
    let (changes, mut moved) = mpsc::channel::<PathChange>(8);
    // A failed exchange leaves the session on the relay, where it is.
    let exchange = tokio::spawn(direct.console(connection, changes));
    while let Some(change) = moved.recv().await {
        published.send_modify(|changes| changes.push(change));
    }
    let _ = exchange.await;
}

/// Accepts the stream the agent opens for each run, question and transfer
/// and reads each in a task of its own, until the connection ends.
async fn accept_streams(connection: Connection, routes: Routes, open: watch::Sender<usize>) {
    let mut readers = JoinSet::new();
    while let Ok(recv) = e2e::streams::accept(&connection).await {
        open.send_modify(|n| *n += 1);
        let routes = routes.clone();
        let open = open.clone();
        readers.spawn(async move {
            read_stream(recv, &routes).await;
            open.send_modify(|n| *n = n.saturating_sub(1));
        });
        // Finished readers are collected as we go.
        while readers.try_join_next().is_some() {}
    }
}

/// Routes every answer on one request stream; the stream's head names the
/// request, and an answer naming another is dropped.
async fn read_stream(recv: RecvStream, routes: &Routes) {
    let Ok((id, mut reader)) = e2e::streams::read_head(recv).await else {
        return;
    };
    while let Ok(Some(msg)) = reader.read_msg::<AgentMsg>().await {
        if msg.request_id() == Some(id) {
            route(routes, msg).await;
        }
    }
}

/// Why reading failed: the connection's own reason when it is gone (an
/// idle timeout says so), else the stream's error.
fn lost_reason(connection: &Connection, e: &FrameError) -> String {
    match connection.close_reason() {
        Some(quinn::ConnectionError::TimedOut) => {
            "the agent was not heard from within the session's idle timeout".to_string()
        }
        Some(reason) => reason.to_string(),
        None => e.to_string(),
    }
}

/// The relay's refusal on the control stream while set-up runs: it
/// refuses a claim whose agent did not come for it. Never completes
/// otherwise.
async fn refusal(link: &mut RelayLink) -> ErrorFrame {
    match link.answer().await {
        Err(LinkError::Refused(frame)) => frame,
        _ => std::future::pending().await,
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(
        "the code was wrong: the person's agent has a different code, and this one no longer works; ask the person to start again and read out the new code"
    )]
    WrongCode,
    #[error("the person declined the session")]
    Declined,
    #[error("the agent left before the session started")]
    AgentGone,
    #[error("the session ended: {0}")]
    Ended(String),
    #[error(transparent)]
    Setup(E2eError),
    #[error(transparent)]
    Tls(TlsError),
    #[error(transparent)]
    Path(PathError),
    #[error("the agent's answer could not be read: {0}")]
    Stream(FrameError),
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl From<ConnectError> for SessionError {
    fn from(e: ConnectError) -> Self {
        SessionError::Link(e.into())
    }
}

impl From<FrameError> for SessionError {
    fn from(e: FrameError) -> Self {
        SessionError::Link(e.into())
    }
}
