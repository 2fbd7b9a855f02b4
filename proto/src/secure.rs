//! The end-to-end session over the spliced stream: a thin async layer that
//! carries the pure [`crate::channel`] handshake and sealed frames over
//! length-prefixed framing.
//!
//! Both sides first send a plain [`Hello`] (so a version mismatch is named,
//! not mistaken for a wrong code), then their PAKE message, then their key
//! confirmation. From then on every frame is one sealed message. Anything the
//! relay or the network changes, replays, reorders or cuts short ends the
//! session with an error.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::channel::{ChannelError, Handshake, Opener, Sealer, SessionBinding, Side};
use crate::code::SessionCode;
use crate::codec::{self, CodecError};
use crate::framing::{FrameError, FrameReader, FrameWriter};
use crate::message::control::{Hello, PROTOCOL_VERSION, Role, version_mismatch};

/// The sending half of an established session.
pub struct SecureWriter<W> {
    frames: FrameWriter<W>,
    sealer: Sealer,
}

/// The receiving half of an established session.
pub struct SecureReader<R> {
    frames: FrameReader<R>,
    opener: Opener,
}

/// Both halves, the words both people can compare, and the value that
/// ties a signature to this session (see [`crate::credential`]).
pub struct Established<R, W> {
    pub reader: SecureReader<R>,
    pub writer: SecureWriter<W>,
    pub verification: String,
    pub binding: SessionBinding,
}

/// Runs the handshake as `role` with the code's password, over the stream
/// the relay just paired.
pub async fn establish<R, W>(
    role: Role,
    code: &SessionCode,
    mut reader: FrameReader<R>,
    mut writer: FrameWriter<W>,
) -> Result<Established<R, W>, SecureError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let side = match role {
        Role::Agent => Side::Agent,
        Role::Console => Side::Console,
    };
    let (handshake, pake) = Handshake::start(
        side,
        &code.nameplate().to_string(),
        code.password().as_str(),
    );
    writer.write_msg(&Hello::new(role)).await?;
    writer.write_frame(&pake).await?;

    let hello: Hello = reader.expect_msg().await?;
    if hello.version != PROTOCOL_VERSION {
        return Err(SecureError::VersionMismatch(version_mismatch(
            PROTOCOL_VERSION,
            hello.version,
        )));
    }
    if hello.role == role {
        return Err(SecureError::SameRole);
    }
    let peer_pake = reader.read_frame().await?.ok_or(FrameError::Closed)?;
    let confirming = handshake.receive(&peer_pake)?;
    writer.write_frame(&confirming.confirmation()).await?;
    let peer_confirmation = reader.read_frame().await?.ok_or(FrameError::Closed)?;
    let channel = confirming.verify(&peer_confirmation)?;
    let verification = channel.verification_words();
    let binding = channel.binding().clone();
    let (sealer, opener) = channel.split();
    Ok(Established {
        reader: SecureReader {
            frames: reader,
            opener,
        },
        writer: SecureWriter {
            frames: writer,
            sealer,
        },
        verification,
        binding,
    })
}

impl<W: AsyncWrite + Unpin> SecureWriter<W> {
    /// Seals and sends one message.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), SecureError> {
        let plain = codec::encode(msg)?;
        let sealed = self.sealer.seal(&plain)?;
        self.frames.write_frame(&sealed).await?;
        Ok(())
    }

    /// The underlying stream, to finish or reset it.
    pub fn get_mut(&mut self) -> &mut W {
        self.frames.get_mut()
    }
}

impl<R: AsyncRead + Unpin> SecureReader<R> {
    /// The next message, or `None` when the peer finished the stream cleanly.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, SecureError> {
        let Some(sealed) = self.frames.read_frame().await? else {
            return Ok(None);
        };
        let plain = self.opener.open(&sealed)?;
        Ok(Some(codec::decode(&plain)?))
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecureError {
    #[error("{0}")]
    VersionMismatch(String),
    #[error("the peer claims the same role as this side: the relay paired the wrong peers")]
    SameRole,
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Codec(#[from] CodecError),
}

impl SecureError {
    /// True when the other side used a different password.
    pub fn is_wrong_code(&self) -> bool {
        matches!(self, SecureError::Channel(ChannelError::WrongCode))
    }
}
