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
}
