//! The session's request streams: the agent opens one unidirectional
//! stream per run, question or file transfer; its first frame is a
//! [`StreamHead`] naming the request, and every later frame is an
//! [`crate::message::session::AgentMsg`] of that request. Finishing the
//! stream ends it; QUIC flow control then holds back only that request.

use quinn::{Connection, RecvStream, SendStream};

use super::{E2eError, lost};
use crate::framing::{FrameReader, FrameWriter};
use crate::message::control::{PROTOCOL_VERSION, version_mismatch};
use crate::message::session::{RequestId, StreamHead};

/// Opens the stream for request `id` and writes its head.
pub async fn open(
    connection: &Connection,
    id: RequestId,
) -> Result<FrameWriter<SendStream>, E2eError> {
    let send = connection.open_uni().await.map_err(|e| lost(&e))?;
    let mut writer = FrameWriter::new(send);
    writer
        .write_msg(&StreamHead {
            version: PROTOCOL_VERSION,
            id,
        })
        .await?;
    Ok(writer)
}

/// The next stream the agent opened, not yet read; `Err` once the
/// connection is gone.
pub async fn accept(connection: &Connection) -> Result<RecvStream, E2eError> {
    connection.accept_uni().await.map_err(|e| lost(&e))
}

/// Reads a stream's head: the request its frames answer.
pub async fn read_head(recv: RecvStream) -> Result<(RequestId, FrameReader<RecvStream>), E2eError> {
    let mut reader = FrameReader::new(recv);
    let head: StreamHead = reader.expect_msg().await?;
    if head.version != PROTOCOL_VERSION {
        return Err(E2eError::VersionMismatch(version_mismatch(
            PROTOCOL_VERSION,
            head.version,
        )));
    }
    Ok((head.id, reader))
}
