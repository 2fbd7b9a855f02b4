//! CPU usage from `GetSystemTimes`, which needs no performance counters
//! (PDH): the share of time not idle between two readings.

/// What `GetSystemTimes` returned, in 100-nanosecond units summed over
/// every logical core. Kernel time includes idle time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemTimes {
    pub idle: u64,
    pub kernel: u64,
    pub user: u64,
}

/// The two 32-bit halves of a `FILETIME` as one count.
pub fn filetime(low: u32, high: u32) -> u64 {
    (u64::from(high) << 32) | u64::from(low)
}

/// The share of all cores busy between two readings, 0 to 100; `None`
/// when no time passed or a counter went backwards (a reading to ignore).
pub fn busy_percent(before: SystemTimes, after: SystemTimes) -> Option<f32> {
    let idle = after.idle.checked_sub(before.idle)?;
    let kernel = after.kernel.checked_sub(before.kernel)?;
    let user = after.user.checked_sub(before.user)?;
    let total = kernel.checked_add(user)?;
    if total == 0 {
        return None;
    }
    let busy = total.saturating_sub(idle);
    let share = busy as f64 * 100.0 / total as f64;
    Some(share.clamp(0.0, 100.0) as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two readings taken 250 ms apart on a 4-core machine with one core
    // busy: 10,000,000 units of all cores, 7,500,000 of them idle.
    const BEFORE: SystemTimes = SystemTimes {
        idle: 812_345_670_000,
        kernel: 1_002_345_670_000,
        user: 120_000_000_000,
    };

    #[test]
    fn busy_share_is_what_was_not_idle() {
        let after = SystemTimes {
            idle: BEFORE.idle + 7_500_000,
            kernel: BEFORE.kernel + 8_000_000,
            user: BEFORE.user + 2_000_000,
        };
        assert_eq!(busy_percent(BEFORE, after), Some(25.0));
    }

    #[test]
    fn no_time_or_a_counter_going_back_gives_no_reading() {
        assert_eq!(busy_percent(BEFORE, BEFORE), None);
        let back = SystemTimes {
            idle: BEFORE.idle - 1,
            ..BEFORE
        };
        assert_eq!(busy_percent(BEFORE, back), None);
    }

    #[test]
    fn idle_above_kernel_time_reads_as_idle_not_negative() {
        // Idle is part of kernel time; a reading that says otherwise must
        // not wrap around.
        let after = SystemTimes {
            idle: BEFORE.idle + 5_000_000,
            kernel: BEFORE.kernel + 1_000_000,
            user: BEFORE.user + 1_000_000,
        };
        assert_eq!(busy_percent(BEFORE, after), Some(0.0));
    }

    #[test]
    fn filetime_halves_join() {
        assert_eq!(filetime(0x89AB_CDEF, 0x0123_4567), 0x0123_4567_89AB_CDEF);
    }
}
