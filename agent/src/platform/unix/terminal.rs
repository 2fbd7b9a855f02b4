//! The person's terminal on Linux and macOS.

/// Throws away what was typed at the terminal but not yet read, so an
/// answer typed before a question was shown cannot answer it. Failure only
/// means standard input is not a terminal.
pub fn flush_typed_ahead() {
    let _ = rustix::termios::tcflush(std::io::stdin(), rustix::termios::QueueSelector::IFlush);
}
