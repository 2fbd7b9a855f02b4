//! Session messages framed as the session frames them, over any stream.
//! Since protocol version 3 the session has no encryption of its own: QUIC's
//! TLS is the only layer, so the benchmark's "session messages" are these
//! frames on a QUIC stream. `establish` keeps the shape of a handshake so the
//! figures stay comparable; the real handshake needs a whole connection and
//! is measured by the end-to-end tests.

use anyhow::Context;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sprijin_proto::code::SessionCode;
use sprijin_proto::framing::{FrameReader, FrameWriter};
use sprijin_proto::message::control::{Hello, Role};
use tokio::io::{AsyncRead, AsyncWrite};

/// The sending half of a session stream.
pub struct SecureWriter<W>(FrameWriter<W>);

/// The receiving half of a session stream.
pub struct SecureReader<R>(FrameReader<R>);

/// Both halves, after each side said hello.
pub struct Established<R, W> {
    pub reader: SecureReader<R>,
    pub writer: SecureWriter<W>,
    pub verification: String,
}

/// Says hello both ways, as the session's first frames do.
pub async fn establish<R, W>(
    role: Role,
    _code: &SessionCode,
    mut reader: FrameReader<R>,
    mut writer: FrameWriter<W>,
) -> anyhow::Result<Established<R, W>>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    writer.write_msg(&Hello::new(role)).await?;
    let _: Hello = reader
        .expect_msg()
        .await
        .context("no hello from the peer")?;
    Ok(Established {
        reader: SecureReader(reader),
        writer: SecureWriter(writer),
        verification: String::new(),
    })
}

impl<W: AsyncWrite + Unpin> SecureWriter<W> {
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> anyhow::Result<()> {
        Ok(self.0.write_msg(msg).await?)
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.0.get_mut()
    }
}

impl<R: AsyncRead + Unpin> SecureReader<R> {
    pub async fn recv<T: DeserializeOwned>(&mut self) -> anyhow::Result<Option<T>> {
        Ok(self.0.read_msg().await?)
    }
}
