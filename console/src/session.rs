//! The console's side of a session: claim the code at the relay, run the
//! end-to-end handshake, wait for the person's yes, then send requests and
//! route the agent's answers back to whoever asked.
//!
//! A reader task owns the receiving half and delivers each answer to the
//! channel of the request it names; a writer task owns the sending half. So a
//! run can stream while a diagnostics request is answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::{Connection, Endpoint, RecvStream, SendStream};
use sprijin_proto::client::{ConnectError, LinkError};
use sprijin_proto::code::SessionCode;
use sprijin_proto::framing::{FrameError, FrameReader, FrameWriter};
use sprijin_proto::message::control::Role;
use sprijin_proto::message::session::{AgentMsg, ConsoleMsg, Request, RequestId};
use sprijin_proto::secure::{self, Established, SecureError};
use sprijin_proto::text::clean_line;
use sprijin_proto::tls::Fingerprint;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::credential_tool::HeldCredential;

/// A session the person allowed: both halves, the host's name and how the
/// agent shows the technician.
type Opened = (
    Established<RecvStream, SendStream>,
    String,
    Option<ShownIdentity>,
);

/// Answers to one request; ends after the final one.
pub type Replies = mpsc::Receiver<AgentMsg>;

/// How many answers may queue per request before the reader waits.
const REPLY_QUEUE: usize = 256;

/// How long a console whose session failed to start waits for the relay to
/// close, and then for its own close to be sent.
const SETUP_LINGER: Duration = Duration::from_secs(2);

pub struct ConnectOptions {
    pub relay: String,
    pub relay_fingerprint: Option<Fingerprint>,
    pub technician: String,
    pub token: Option<String>,
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
    pending: Arc<Mutex<HashMap<RequestId, mpsc::Sender<AgentMsg>>>>,
    ended: watch::Receiver<Option<String>>,
    audit_head: watch::Receiver<Option<AuditHead>>,
    next_id: AtomicU32,
    writer: tokio::task::JoinHandle<()>,
    /// The reader of the agent's messages.
    tasks: JoinSet<()>,
    // Kept so the connection lives as long as the session.
    connection: Connection,
    endpoint: Endpoint,
}

impl Session {
    /// Claims `code`, runs the handshake and waits for the person to allow
    /// the session.
    pub async fn connect(
        code: &SessionCode,
        opts: &ConnectOptions,
    ) -> Result<Session, SessionError> {
        Self::connect_with(code, opts, None).await
    }

    /// Like [`connect`](Self::connect), proving the technician's name with
    /// `credential` inside the end-to-end channel.
    pub async fn connect_with(
        code: &SessionCode,
        opts: &ConnectOptions,
        credential: Option<&HeldCredential>,
    ) -> Result<Session, SessionError> {
        let link = crate::redirect::claim(code, opts).await?;
        let opened = Self::handshake(code, credential, link.reader, link.writer).await;
        let (established, host, identity) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // Our stream is finished by now. Give the relay a moment to
                // pass that on and close its side, so the agent learns at
                // once rather than when the connection's idle timeout runs
                // out; then close ourselves before the program exits.
                let _ = tokio::time::timeout(SETUP_LINGER, link.connection.closed()).await;
                link.connection.close(1u32.into(), b"session setup failed");
                let _ = tokio::time::timeout(SETUP_LINGER, link.endpoint.wait_idle()).await;
                return Err(e);
            }
        };
        let mut reader = established.reader;

        let (outbox, mut outbox_rx) = mpsc::channel::<ConsoleMsg>(64);
        let mut writer = established.writer;
        let writer = tokio::spawn(async move {
            while let Some(msg) = outbox_rx.recv().await {
                if writer.send(&msg).await.is_err() {
                    break;
                }
            }
            let _ = writer.get_mut().finish();
        });
        let pending: Arc<Mutex<HashMap<RequestId, mpsc::Sender<AgentMsg>>>> = Arc::default();
        let (ended_tx, ended) = watch::channel(None);
        let (head_tx, audit_head) = watch::channel(None);
        let routes = pending.clone();
        // The reader belongs to the session: closing it waits for the
        // reader, and dropping it stops the reader.
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let reason = loop {
                match reader.recv::<AgentMsg>().await {
                    Ok(Some(AgentMsg::Bye { reason })) => break reason,
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
                    Ok(Some(msg)) => {
                        let Some(id) = msg.request_id() else { continue };
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
                    // Only the agent's sealed goodbye ends a session: a
                    // stream that just stops may be the relay's doing.
                    Ok(None) => {
                        break "the connection was lost: the agent's stream ended without a goodbye"
                            .to_string();
                    }
                    Err(e) => break format!("the connection was lost: {e}"),
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
            next_id: AtomicU32::new(1),
            writer,
            tasks,
            connection: link.connection,
            endpoint: link.endpoint,
        })
    }

    /// Runs the end-to-end handshake over the paired stream, says who the
    /// technician is, and waits for the agent's welcome: the host's name
    /// once the person said yes.
    async fn handshake(
        code: &SessionCode,
        credential: Option<&HeldCredential>,
        reader: FrameReader<RecvStream>,
        writer: FrameWriter<SendStream>,
    ) -> Result<Opened, SessionError> {
        let mut established = secure::establish(Role::Console, code, reader, writer)
            .await
            .map_err(|e| {
                if e.is_wrong_code() {
                    SessionError::WrongCode
                } else if matches!(
                    e,
                    SecureError::Frame(
                        FrameError::Closed | FrameError::Io(_) | FrameError::Truncated
                    )
                ) {
                    SessionError::AgentGone
                } else {
                    SessionError::Secure(e)
                }
            })?;
        // First sealed message: the credential, with a proof bound to this
        // session's keys, so it cannot be replayed into another session.
        let presentation = credential.map(|c| Box::new(c.present(&established.binding)));
        established
            .writer
            .send(&ConsoleMsg::Identify { presentation })
            .await
            .map_err(SessionError::Secure)?;
        let mut identity = None;
        let welcome = loop {
            let msg = established
                .reader
                .recv::<AgentMsg>()
                .await
                .map_err(SessionError::Secure)?;
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

    /// Sends a request; its answers arrive on the returned channel.
    pub async fn request(&self, request: Request) -> Result<(RequestId, Replies), SessionError> {
        if let Some(reason) = self.ended() {
            return Err(SessionError::Ended(reason));
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
        self.connection.close(0u32.into(), b"bye");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.endpoint.wait_idle())
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
    Secure(SecureError),
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
