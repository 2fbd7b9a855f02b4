//! Text from the other side, made safe to show on a terminal.
//!
//! Names, titles, descriptions, run output and process command lines come
//! from a peer that may be hostile. Written raw, an escape sequence could
//! move the cursor, rewrite what the person already read, set the window
//! title or feed keys back; a bidirectional mark could make `rm` read as
//! something else. Every such character is replaced by a visible U+FFFD
//! (`�`), so the text keeps its length in characters and nothing is hidden.
//!
//! [`clean_line`] is for one-line fields (a name, a title); [`clean_text`]
//! keeps line breaks and tabs, for descriptions and output.
//!
//! Run output arrives as byte chunks, and a character or a `\r\n` can be
//! cut between two of them. [`CleanStream`] turns such a stream into clean
//! text for a terminal, and [`Utf8Carry`] into exact text (or, when the bytes
//! are not UTF-8, the bytes themselves) for machines; both keep the cut
//! piece back until the next chunk.

use std::borrow::Cow;

/// What a neutralised character is shown as.
pub const REPLACEMENT: char = '\u{FFFD}';

/// True for characters that must never reach a terminal from a peer: C0 and
/// C1 controls, DEL, bidirectional overrides, embeddings, isolates and marks,
/// and the Unicode line and paragraph separators.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn clean(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_unsafe(c) && !keep(c) {
                    REPLACEMENT
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// One line of text safe to print: every control character (line breaks
/// included), escape sequence introducer and bidirectional mark replaced.
pub fn clean_line(text: &str) -> Cow<'_, str> {
    clean(text, |_| false)
}

/// Text safe to print over several lines: like [`clean_line`], but `\n` and
/// `\t` stay, and a `\r` just before `\n` is dropped (a lone `\r`, which
/// would let later text overwrite a line, is replaced).
pub fn clean_text(text: &str) -> Cow<'_, str> {
    let text: Cow<'_, str> = if text.contains("\r\n") {
        Cow::Owned(text.replace("\r\n", "\n"))
    } else {
        Cow::Borrowed(text)
    };
    match clean(&text, |c| c == '\n' || c == '\t') {
        Cow::Borrowed(_) => text,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// The longest a UTF-8 character can be; at most one byte less is ever
/// carried over to the next chunk.
const MAX_UTF8_LEN: usize = 4;

/// The next piece of `bytes`: text, an invalid sequence, or the start of a
/// character that the next chunk may complete.
enum Piece<'a> {
    Text(&'a str),
    Invalid,
    Incomplete,
}

fn next_piece(bytes: &[u8]) -> (Piece<'_>, usize) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Piece::Text(text), bytes.len()),
        Err(e) if e.valid_up_to() > 0 => {
            let valid = e.valid_up_to();
            // `valid_up_to` bytes are UTF-8, as the error says.
            let text = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            (Piece::Text(text), valid)
        }
        Err(e) => match e.error_len() {
            Some(len) => (Piece::Invalid, len),
            None => (Piece::Incomplete, 0),
        },
    }
}

/// Run output made safe for a terminal as it streams in: invalid UTF-8 shows
/// as U+FFFD, and everything [`clean_text`] neutralises is neutralised, with
/// a character or a `\r\n` cut between chunks put back together. Keep one
/// per stream of a run.
#[derive(Debug, Clone, Default)]
pub struct CleanStream {
    carry: Vec<u8>,
    /// The last chunk ended in `\r`; the next decides whether it was a
    /// line ending (`\r\n`) or a lone `\r`.
    cr: bool,
}

impl CleanStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// The clean text of `chunk`, less any piece held back for the next one.
    pub fn push(&mut self, chunk: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        let mut text = String::with_capacity(bytes.len() + 1);
        if std::mem::take(&mut self.cr) {
            text.push('\r');
        }
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let (piece, used) = next_piece(rest);
            match piece {
                Piece::Text(t) => text.push_str(t),
                Piece::Invalid => text.push(REPLACEMENT),
                Piece::Incomplete => {
                    self.carry = rest.to_vec();
                    break;
                }
            }
            rest = &rest[used..];
        }
        if self.carry.is_empty() && text.ends_with('\r') {
            text.pop();
            self.cr = true;
        }
        clean_text(&text).into_owned()
    }

    /// What is still held back at the end of the stream: a character that
    /// never completed, or a final lone `\r`, each shown as U+FFFD.
    pub fn finish(&mut self) -> String {
        let mut text = String::new();
        if std::mem::take(&mut self.cr) {
            text.push(REPLACEMENT);
        }
        if !std::mem::take(&mut self.carry).is_empty() {
            text.push(REPLACEMENT);
        }
        text
    }
}

/// A chunk of a byte stream, decoded without loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// The bytes were UTF-8: this text is exactly them.
    Text(String),
    /// The bytes were not UTF-8; here they are as they came.
    Bytes(Vec<u8>),
}

/// Exact UTF-8 decoding of a byte stream that arrives in chunks: a chunk that
/// is UTF-8, apart from a character cut at its end, becomes text and the cut
/// piece waits for the next chunk; any other chunk is passed on as bytes.
/// Joining what [`push`](Self::push) and [`finish`](Self::finish) return
/// gives back exactly the bytes pushed. Keep one per stream of a run.
#[derive(Debug, Clone, Default)]
pub struct Utf8Carry {
    carry: Vec<u8>,
}

impl Utf8Carry {
    pub fn new() -> Self {
        Self::default()
    }

    /// `chunk`, with any piece carried from the previous chunk in front.
    /// Empty text when the chunk is only the start of a character.
    pub fn push(&mut self, chunk: &[u8]) -> Decoded {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(chunk);
        match std::str::from_utf8(&bytes) {
            Ok(_) => Decoded::Text(String::from_utf8(bytes).unwrap_or_default()),
            Err(e) if e.error_len().is_none() && bytes.len() - e.valid_up_to() < MAX_UTF8_LEN => {
                self.carry = bytes.split_off(e.valid_up_to());
                Decoded::Text(String::from_utf8(bytes).unwrap_or_default())
            }
            Err(_) => Decoded::Bytes(bytes),
        }
    }

    /// The bytes still carried at the end of the stream: the start of a
    /// character that never completed, so not text.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.carry);
        (!rest.is_empty()).then_some(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(clean_line("Ana Pop"), Cow::Borrowed("Ana Pop")));
        assert!(matches!(clean_text("a\n\tb"), Cow::Borrowed("a\n\tb")));
    }

    #[test]
    fn escape_sequences_are_neutralised() {
        assert_eq!(clean_line("\x1b[2J\x1b]0;hi\x07x"), "�[2J�]0;hi�x");
        assert_eq!(
            clean_text("red \x1b[31mtext\x1b[0m\n"),
            "red �[31mtext�[0m\n"
        );
        // C1 control sequence introducer and DEL.
        assert_eq!(clean_line("a\u{9b}31mb\u{7f}"), "a�31mb�");
    }

    #[test]
    fn bidirectional_marks_are_neutralised() {
        assert_eq!(clean_line("abc\u{202E}fdp.exe"), "abc�fdp.exe");
        assert_eq!(clean_line("\u{2066}x\u{2069}\u{200F}"), "�x��");
    }

    #[test]
    fn line_breaks_are_kept_only_in_text() {
        assert_eq!(clean_line("a\nb\tc"), "a�b�c");
        assert_eq!(clean_text("a\r\nb\rc"), "a\nb�c");
    }

    #[test]
    fn other_scripts_pass() {
        assert_eq!(clean_line("Ștefan Țepeș — 東京"), "Ștefan Țepeș — 東京");
    }

    fn stream_all(chunks: &[&[u8]]) -> String {
        let mut stream = CleanStream::new();
        let mut out: String = chunks.iter().map(|c| stream.push(c)).collect();
        out.push_str(&stream.finish());
        out
    }

    #[test]
    fn a_character_cut_between_chunks_streams_whole() {
        let bytes = "aș\n".as_bytes();
        assert_eq!(stream_all(&[&bytes[..2], &bytes[2..]]), "aș\n");
        let bytes = "東".as_bytes();
        assert_eq!(stream_all(&[&bytes[..1], &bytes[1..2], &bytes[2..]]), "東");
    }

    #[test]
    fn streamed_escapes_and_invalid_bytes_are_neutralised() {
        assert_eq!(
            stream_all(&[b"\x1b]0;pwned\x07\x1b[2J", b"ok\xff\xfe\n"]),
            "�]0;pwned��[2Jok��\n"
        );
        // The start of an escape in one chunk and its rest in the next.
        assert_eq!(stream_all(&[b"a\x1b", b"[31mb"]), "a�[31mb");
        // A character that never completes, at the end of the stream.
        assert_eq!(stream_all(&[b"x\xe6\x9d"]), "x�");
    }

    #[test]
    fn streamed_line_endings_survive_a_cut() {
        assert_eq!(stream_all(&[b"a\r", b"\nb"]), "a\nb");
        assert_eq!(stream_all(&[b"a\r", b"b"]), "a�b");
        assert_eq!(stream_all(&[b"a\r"]), "a�");
        assert_eq!(stream_all(&[b"a\rb\tc\n"]), "a�b\tc\n");
    }

    fn decode_all(chunks: &[&[u8]]) -> (Vec<Decoded>, Vec<u8>) {
        let mut carry = Utf8Carry::new();
        let mut parts: Vec<Decoded> = chunks.iter().map(|c| carry.push(c)).collect();
        parts.extend(carry.finish().map(Decoded::Bytes));
        let joined = parts
            .iter()
            .flat_map(|p| match p {
                Decoded::Text(t) => t.as_bytes().to_vec(),
                Decoded::Bytes(b) => b.clone(),
            })
            .collect();
        (parts, joined)
    }

    #[test]
    fn exact_decoding_carries_a_cut_character_over() {
        let text = "a".repeat(5) + "ș";
        let bytes = text.as_bytes();
        let (parts, joined) = decode_all(&[&bytes[..6], &bytes[6..]]);
        assert_eq!(
            parts,
            [Decoded::Text("aaaaa".into()), Decoded::Text("ș".into())]
        );
        assert_eq!(joined, bytes);
    }

    #[test]
    fn exact_decoding_passes_binary_on_as_bytes() {
        let (parts, joined) = decode_all(&[b"ok", b"\x00\xff\x1b", b"\xc8", b"x\xe6"]);
        assert_eq!(
            parts,
            [
                Decoded::Text("ok".into()),
                Decoded::Bytes(b"\x00\xff\x1b".to_vec()),
                Decoded::Text(String::new()),
                Decoded::Bytes(b"\xc8x\xe6".to_vec()),
            ]
        );
        assert_eq!(joined, b"ok\x00\xff\x1b\xc8x\xe6");
        // A character cut at the very end is handed back as bytes.
        let (parts, joined) = decode_all(&[b"a\xe6\x9d"]);
        assert_eq!(parts.last(), Some(&Decoded::Bytes(b"\xe6\x9d".to_vec())));
        assert_eq!(joined, b"a\xe6\x9d");
    }
}
