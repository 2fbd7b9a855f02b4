//! The one place that knows how messages become bytes: bincode 2 in serde
//! mode with a decode limit, so a hostile length inside a message cannot make
//! us allocate more than a frame may hold. Swapping the format is a change to
//! this file alone.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest frame (and so the largest encoded message) we accept: 1 MiB.
pub const MAX_FRAME: usize = 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_FRAME>()
}

/// Encodes a message; fails only if the message is larger than [`MAX_FRAME`].
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    let bytes = bincode::serde::encode_to_vec(msg, config())
        .map_err(|e| CodecError::Encode(e.to_string()))?;
    if bytes.len() > MAX_FRAME {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            max: MAX_FRAME,
        });
    }
    Ok(bytes)
}

/// Decodes one whole message; trailing bytes are an error, since a frame
/// holds exactly one message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (msg, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::Trailing {
            extra: bytes.len() - used,
        });
    }
    Ok(msg)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("message could not be encoded: {0}")]
    Encode(String),
    #[error("message is {len} bytes, over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("malformed message from peer: {0}")]
    Decode(String),
    #[error("malformed message from peer: {extra} unexpected bytes after the message")]
    Trailing { extra: usize },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Msg {
        Small(u32),
        Text(String),
        Bytes(Vec<u8>),
    }

    #[test]
    fn messages_round_trip() {
        for msg in [
            Msg::Small(7),
            Msg::Text("hello".into()),
            Msg::Bytes(vec![1, 2, 3]),
        ] {
            let bytes = encode(&msg).unwrap();
            assert_eq!(decode::<Msg>(&bytes).unwrap(), msg);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0xff][..],
            &[9, 9, 9, 9][..],
            &[1, 0xfc, 0xff, 0xff, 0xff, 0xff][..],
        ] {
            assert!(decode::<Msg>(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn a_huge_declared_length_does_not_allocate() {
        // Variant 2 (Bytes) with a declared length of u64::MAX.
        let mut bytes = vec![2, 0xfd];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode::<Msg>(&bytes), Err(CodecError::Decode(_))));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&Msg::Small(1)).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<Msg>(&bytes),
            Err(CodecError::Trailing { extra: 1 })
        );
    }

    #[test]
    fn oversized_messages_are_refused_when_encoding() {
        let msg = Msg::Bytes(vec![0; MAX_FRAME + 1]);
        assert!(encode(&msg).is_err());
    }
}
