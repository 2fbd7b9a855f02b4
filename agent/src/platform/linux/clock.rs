//! The kernel's own view of whether its clock is synchronised, for
//! machines without systemd's time service to ask: `adjtimex` in read-only
//! mode. A time daemon (ntpd, chrony, systemd-timesyncd) clears the
//! kernel's "unsynchronised" mark while it keeps the clock in step.

/// Whether the kernel says its clock is kept synchronised; `None` when the
/// call fails.
#[allow(unsafe_code)]
pub fn kernel_clock_synchronized() -> Option<bool> {
    // SAFETY: `timex` is plain data, so all zeroes is a valid value; with
    // `modes` 0 the call only reads the kernel's state into the struct we
    // own, and keeps no pointer to it after returning.
    let (state, status) = unsafe {
        let mut t: nix::libc::timex = std::mem::zeroed();
        let state = nix::libc::adjtimex(&mut t);
        (state, t.status)
    };
    synchronized(state, status)
}

/// Reads `adjtimex`'s answer: its return value and the status bits.
fn synchronized(state: i32, status: i32) -> Option<bool> {
    if state < 0 {
        return None;
    }
    Some(state != nix::libc::TIME_ERROR && status & nix::libc::STA_UNSYNC == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_answers_either_way() {
        assert!(kernel_clock_synchronized().is_some());
    }

    #[test]
    fn an_error_state_or_the_unsync_mark_is_unsynchronised() {
        assert_eq!(synchronized(0, 0x2001), Some(true));
        assert_eq!(synchronized(nix::libc::TIME_ERROR, 0), Some(false));
        assert_eq!(synchronized(0, nix::libc::STA_UNSYNC), Some(false));
        assert_eq!(synchronized(-1, 0), None);
    }
}
