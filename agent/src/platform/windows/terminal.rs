//! The person's console window on Windows.

use windows_sys::Win32::Foundation::INVALID_HANDLE_VALUE;
use windows_sys::Win32::System::Console::{
    FlushConsoleInputBuffer, GetStdHandle, STD_INPUT_HANDLE,
};

/// Throws away what was typed in the console but not yet read, so an
/// answer typed before a question was shown cannot answer it. Failure only
/// means standard input is not a console.
pub fn flush_typed_ahead() {
    // SAFETY: GetStdHandle has no preconditions; a handle that is not a
    // console only makes FlushConsoleInputBuffer fail, which is ignored.
    unsafe {
        let input = GetStdHandle(STD_INPUT_HANDLE);
        if !input.is_null() && input != INVALID_HANDLE_VALUE {
            FlushConsoleInputBuffer(input);
        }
    }
}

/// Whether the agent has no standard input at all, as when it was started
/// from the Start menu rather than a console or a pipe.
pub fn stdin_is_absent() -> bool {
    // SAFETY: GetStdHandle has no preconditions.
    let input = unsafe { GetStdHandle(STD_INPUT_HANDLE) };
    input.is_null() || input == INVALID_HANDLE_VALUE
}
