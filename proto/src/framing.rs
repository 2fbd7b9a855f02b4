//! Length-prefixed frames over a byte stream (a QUIC stream in practice).
//!
//! Each frame is a 4-byte big-endian length followed by that many bytes. The
//! length is checked against the limit before anything is allocated, so a
//! peer announcing a 4 GiB frame costs us four bytes of reading. A clean end
//! of stream between frames is `Ok(None)`; an end inside a frame is an error.
//!
//! The limit belongs to each reader and writer: session frames may be up to
//! [`MAX_FRAME`], while the relay reads a client's control messages (hello,
//! open, claim) with the much smaller [`MAX_CONTROL_FRAME`], so an unpaired
//! client cannot make it hold a large frame.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use crate::codec::MAX_FRAME;
use crate::codec::{self, CodecError};

/// The largest control message (hello, open, claim and the relay's answers)
/// a relay reads before pairing; none comes near it.
pub const MAX_CONTROL_FRAME: usize = 64 * 1024;

/// Reads frames from one direction of a stream.
pub struct FrameReader<R> {
    inner: R,
    max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader for session frames, up to [`MAX_FRAME`].
    pub fn new(inner: R) -> Self {
        Self::with_limit(inner, MAX_FRAME)
    }

    /// A reader for control messages, up to [`MAX_CONTROL_FRAME`].
    pub fn control(inner: R) -> Self {
        Self::with_limit(inner, MAX_CONTROL_FRAME)
    }

    /// A reader refusing frames over `max` bytes (never more than
    /// [`MAX_FRAME`], which the codec enforces anyway).
    pub fn with_limit(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            max: max.min(MAX_FRAME),
        }
    }

    /// The largest frame this reader accepts.
    pub fn limit(&self) -> usize {
        self.max
    }

    /// The next frame, or `None` if the peer finished the stream cleanly.
    pub async fn read_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let mut header = [0u8; 4];
        let mut filled = 0;
        while filled < header.len() {
            let n = self.inner.read(&mut header[filled..]).await?;
            if n == 0 {
                return if filled == 0 {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
            filled += n;
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        let mut body = vec![0u8; len];
        match self.inner.read_exact(&mut body).await {
            Ok(_) => Ok(Some(body)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
            Err(e) => Err(e.into()),
        }
    }

    /// The next frame decoded as a message; `None` on a clean end of stream.
    pub async fn read_msg<T: DeserializeOwned>(&mut self) -> Result<Option<T>, FrameError> {
        match self.read_frame().await? {
            Some(bytes) => Ok(Some(codec::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Like [`read_msg`](Self::read_msg), but an end of stream is an error.
    pub async fn expect_msg<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        self.read_msg().await?.ok_or(FrameError::Closed)
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// Writes frames to one direction of a stream.
pub struct FrameWriter<W> {
    inner: W,
    max: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer for session frames, up to [`MAX_FRAME`].
    pub fn new(inner: W) -> Self {
        Self::with_limit(inner, MAX_FRAME)
    }

    /// A writer refusing frames over `max` bytes (at most [`MAX_FRAME`]).
    pub fn with_limit(inner: W, max: usize) -> Self {
        FrameWriter {
            inner,
            max: max.min(MAX_FRAME),
        }
    }

    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<(), FrameError> {
        if payload.len() > self.max {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: self.max,
            });
        }
        // One write for header and body keeps small frames in one packet.
        let mut buf = Vec::with_capacity(4 + payload.len());
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(payload);
        self.inner.write_all(&buf).await?;
        Ok(())
    }

    pub async fn write_msg<T: Serialize>(&mut self, msg: &T) -> Result<(), FrameError> {
        let bytes = codec::encode(msg)?;
        self.write_frame(&bytes).await
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame of {len} bytes is over the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("the stream ended in the middle of a frame")]
    Truncated,
    #[error("the peer closed the stream")]
    Closed,
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("stream error: {0}")]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_clean_end_is_none() {
        let (a, b) = tokio::io::duplex(64);
        let mut w = FrameWriter::new(a);
        let mut r = FrameReader::new(b);
        let writer = tokio::spawn(async move {
            w.write_frame(b"one").await.unwrap();
            w.write_frame(b"").await.unwrap();
            w.write_msg(&(7u32, "x".to_string())).await.unwrap();
        });
        assert_eq!(r.read_frame().await.unwrap().unwrap(), b"one");
        assert_eq!(r.read_frame().await.unwrap().unwrap(), b"");
        let msg: (u32, String) = r.expect_msg().await.unwrap();
        assert_eq!(msg, (7, "x".into()));
        writer.await.unwrap();
        assert!(r.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_allocating() {
        let bytes = u32::MAX.to_be_bytes().to_vec();
        let mut r = FrameReader::new(&bytes[..]);
        assert!(matches!(
            r.read_frame().await,
            Err(FrameError::TooLarge { len, .. }) if len == u32::MAX as usize
        ));
    }

    #[tokio::test]
    async fn custom_limit_applies() {
        let mut bytes = 11u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 11]);
        let mut r = FrameReader::with_limit(&bytes[..], 10);
        assert!(matches!(
            r.read_frame().await,
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn a_control_reader_refuses_a_frame_a_session_reader_takes() {
        let mut bytes = ((MAX_CONTROL_FRAME + 1) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&vec![0; MAX_CONTROL_FRAME + 1]);
        let mut control = FrameReader::control(&bytes[..]);
        assert_eq!(control.limit(), MAX_CONTROL_FRAME);
        assert!(matches!(
            control.read_frame().await,
            Err(FrameError::TooLarge {
                max: MAX_CONTROL_FRAME,
                ..
            })
        ));
        let mut session = FrameReader::new(&bytes[..]);
        assert_eq!(
            session.read_frame().await.unwrap().unwrap().len(),
            MAX_CONTROL_FRAME + 1
        );
    }

    #[tokio::test]
    async fn truncated_header_and_body_are_errors() {
        let mut r = FrameReader::new(&[0u8, 0][..]);
        assert!(matches!(r.read_frame().await, Err(FrameError::Truncated)));
        let mut bytes = 10u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(b"abc");
        let mut r = FrameReader::new(&bytes[..]);
        assert!(matches!(r.read_frame().await, Err(FrameError::Truncated)));
    }

    #[tokio::test]
    async fn garbage_payload_is_a_codec_error() {
        let mut bytes = 3u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xff, 0xff, 0xff]);
        let mut r = FrameReader::new(&bytes[..]);
        assert!(matches!(
            r.read_msg::<(u32, String)>().await,
            Err(FrameError::Codec(_))
        ));
    }

    #[tokio::test]
    async fn writer_refuses_oversized_frames() {
        let mut w = FrameWriter::new(Vec::new());
        let big = vec![0u8; MAX_FRAME + 1];
        assert!(matches!(
            w.write_frame(&big).await,
            Err(FrameError::TooLarge { .. })
        ));
    }
}
