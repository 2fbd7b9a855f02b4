//! The handshake and the request streams over real QUIC connections on
//! loopback: agent and console endpoints talking directly, and a relay in
//! the middle that terminates TLS towards each side.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, Endpoint};

use super::*;
use crate::message::control::Role;
use crate::message::session::AgentMsg;
use crate::tls::{self, SessionIdentity};

const IDLE: Duration = Duration::from_secs(10);

fn code(text: &str) -> SessionCode {
    text.parse().unwrap()
}

fn loopback() -> SocketAddr {
    (std::net::Ipv4Addr::LOCALHOST, 0).into()
}

/// An agent-side endpoint (server) with a fresh identity.
fn agent_endpoint() -> (Endpoint, Arc<SessionIdentity>) {
    let identity = Arc::new(SessionIdentity::generate().unwrap());
    let config = tls::session_server_config(&identity, IDLE).unwrap();
    (Endpoint::server(config, loopback()).unwrap(), identity)
}

/// A console-side connection to `to`, with its identity.
async fn console_connect(to: SocketAddr) -> (Endpoint, Connection, Arc<SessionIdentity>) {
    let identity = Arc::new(SessionIdentity::generate().unwrap());
    let mut endpoint = Endpoint::client(loopback()).unwrap();
    endpoint.set_default_client_config(tls::session_client_config(&identity, IDLE).unwrap());
    let connection = endpoint
        .connect(to, "sprijin-session")
        .unwrap()
        .await
        .unwrap();
    (endpoint, connection, identity)
}

async fn accept(endpoint: &Endpoint) -> Connection {
    endpoint.accept().await.unwrap().await.unwrap()
}

/// Both sides of one session connected directly, each with its own code.
async fn pair(
    agent_code: &str,
    console_code: &str,
) -> (Result<Established, E2eError>, Result<Established, E2eError>) {
    let (agent_ep, agent_id) = agent_endpoint();
    let addr = agent_ep.local_addr().unwrap();
    let agent_code = code(agent_code);
    let console_code = code(console_code);
    let agent = tokio::spawn(async move {
        let connection = accept(&agent_ep).await;
        let result = establish(Role::Agent, &agent_code, connection, &agent_id).await;
        (result, agent_ep)
    });
    let (_console_ep, connection, console_id) = console_connect(addr).await;
    let console = establish(Role::Console, &console_code, connection, &console_id).await;
    let (agent, _agent_ep) = agent.await.unwrap();
    (agent, console)
}

#[tokio::test]
async fn same_code_gives_both_sides_the_same_words_and_binding() {
    let (agent, console) = pair("7-abacus-acorn", "7-abacus-acorn").await;
    let (agent, console) = (agent.unwrap(), console.unwrap());
    assert_eq!(agent.verification, console.verification);
    assert_eq!(agent.binding, console.binding);
}

#[tokio::test]
async fn wrong_code_is_wrong_code_on_both_sides() {
    let (agent, console) = pair("7-abacus-acorn", "7-acorn-actor").await;
    assert!(
        agent.as_ref().is_err_and(E2eError::is_wrong_code),
        "{:?}",
        agent.err()
    );
    assert!(
        console.as_ref().is_err_and(E2eError::is_wrong_code),
        "{:?}",
        console.err()
    );
}

/// A relay that terminates TLS towards both sides and passes every
/// handshake frame across unchanged, hoping the two ends agree anyway.
#[tokio::test]
async fn a_relay_terminating_tls_in_the_middle_fails_confirmation_on_both_sides() {
    let (agent_ep, agent_id) = agent_endpoint();
    let agent_addr = agent_ep.local_addr().unwrap();
    // The middle: a server towards the console, a client towards the agent.
    let (middle_ep, _middle_server_id) = agent_endpoint();
    let middle_addr = middle_ep.local_addr().unwrap();
    let code_text = "7-abacus-acorn";

    let agent = tokio::spawn(async move {
        let connection = accept(&agent_ep).await;
        let result = establish(Role::Agent, &code(code_text), connection, &agent_id).await;
        (result, agent_ep)
    });
    let middle = tokio::spawn(async move {
        let from_console = accept(&middle_ep).await;
        let (_to_agent_ep, to_agent, _) = console_connect(agent_addr).await;
        let (console_send, console_recv) = from_console.accept_bi().await.unwrap();
        let (agent_send, agent_recv) = to_agent.open_bi().await.unwrap();
        let up = tokio::spawn(copy(console_recv, agent_send));
        let down = tokio::spawn(copy(agent_recv, console_send));
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = up.await;
            let _ = down.await;
        })
        .await;
        (middle_ep, to_agent, from_console)
    });
    let (_console_ep, connection, console_id) = console_connect(middle_addr).await;
    let console = establish(Role::Console, &code(code_text), connection, &console_id).await;
    let (agent, _) = agent.await.unwrap();
    drop(middle);
    assert!(
        agent.as_ref().is_err_and(E2eError::is_wrong_code),
        "{:?}",
        agent.err()
    );
    assert!(
        console.as_ref().is_err_and(E2eError::is_wrong_code),
        "{:?}",
        console.err()
    );
}

async fn copy(mut from: quinn::RecvStream, mut to: quinn::SendStream) {
    while let Ok(Some(chunk)) = from.read_chunk(64 * 1024, true).await {
        if to.write_all(&chunk.bytes).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn request_streams_name_their_request() {
    let (agent, console) = pair("7-abacus-acorn", "7-abacus-acorn").await;
    let (agent, console) = (agent.unwrap(), console.unwrap());
    let mut run = streams::open(&agent.connection, 42).await.unwrap();
    run.write_msg(&AgentMsg::Ack { id: 42 }).await.unwrap();
    run.get_mut().finish().unwrap();
    let recv = streams::accept(&console.connection).await.unwrap();
    let (id, mut reader) = streams::read_head(recv).await.unwrap();
    assert_eq!(id, 42);
    assert_eq!(
        reader.read_msg::<AgentMsg>().await.unwrap(),
        Some(AgentMsg::Ack { id: 42 })
    );
    assert_eq!(reader.read_msg::<AgentMsg>().await.unwrap(), None);
}

/// A request stream that is not read must not hold back the control
/// stream: QUIC's flow control is per stream.
#[tokio::test]
async fn a_stalled_request_stream_does_not_delay_the_control_stream() {
    let (agent, console) = pair("7-abacus-acorn", "7-abacus-acorn").await;
    let (mut agent, mut console) = (agent.unwrap(), console.unwrap());
    let connection = agent.connection.clone();
    // Far more than a stream's window, never read by the console.
    let flood = tokio::spawn(async move {
        let mut run = streams::open(&connection, 1).await.unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..256 {
            if run.write_frame(&chunk).await.is_err() {
                return;
            }
        }
    });
    let _unread = streams::accept(&console.connection).await.unwrap();
    agent
        .writer
        .write_msg(&AgentMsg::Ack { id: 2 })
        .await
        .unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        console.reader.read_msg::<AgentMsg>(),
    )
    .await
    .expect("the control stream waited behind the stalled request stream");
    assert_eq!(answer.unwrap(), Some(AgentMsg::Ack { id: 2 }));
    assert!(!flood.is_finished(), "the flood should still be held back");
    flood.abort();
    let _ = console.writer.get_mut().finish();
}

#[test]
fn session_identities_differ_every_time() {
    let one = SessionIdentity::generate().unwrap();
    let two = SessionIdentity::generate().unwrap();
    assert_ne!(one.certificate(), two.certificate());
}

#[test]
fn idle_timeout_under_a_second_is_refused() {
    assert!(tls::session_transport(Duration::from_millis(10)).is_err());
    assert!(tls::session_transport(Duration::from_secs(60)).is_ok());
}
