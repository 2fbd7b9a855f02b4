//! Copies the session stream between a paired agent and console, byte for
//! byte, in both directions, without looking inside (the content is sealed
//! end to end; the relay could not read it if it tried).
//!
//! Each direction ends when its sender finishes; the session ends when both
//! have, when either side resets, or when nothing moved for the idle timeout.
//! An optional rate limit paces each direction; an optional tap sees every
//! chunk (tests use it to prove the relay sees nothing readable).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use quinn::{RecvStream, SendStream};
use tokio::time::Instant;

pub use crate::forward::{Direction, Tap};

/// One side's stream halves.
pub struct Side {
    pub send: SendStream,
    pub recv: RecvStream,
}

pub struct SpliceOptions {
    pub bytes_per_sec: Option<u64>,
    pub idle_timeout: Duration,
    pub tap: Option<Tap>,
}

/// What a finished splice moved, and why it ended.
#[derive(Debug, Clone, Copy)]
pub struct SpliceStats {
    pub agent_to_console: u64,
    pub console_to_agent: u64,
    pub idle: bool,
    /// How long after the splice began the agent's first bytes passed:
    /// its answer in the end-to-end set-up.
    pub first_answer: Option<Duration>,
}

/// The largest chunk read at once: big enough for throughput, small enough
/// that a session never holds much in the relay.
const CHUNK: usize = 64 * 1024;

/// How long a finished direction waits for the peer to acknowledge its
/// last bytes before the session is torn down.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// Splices until the session ends. Never fails: a broken side just ends it.
pub async fn splice(agent: Side, console: Side, opts: SpliceOptions) -> SpliceStats {
    let last = Arc::new(AtomicU64::new(0));
    let first = AtomicU64::new(NOT_YET);
    let start = Instant::now();
    let a2c = pump(
        agent.recv,
        console.send,
        Direction::AgentToConsole,
        &opts,
        Clock {
            last: &last,
            first: Some(&first),
            start,
        },
    );
    let c2a = pump(
        console.recv,
        agent.send,
        Direction::ConsoleToAgent,
        &opts,
        Clock {
            last: &last,
            first: None,
            start,
        },
    );
    let watchdog = async {
        loop {
            let idle_since = start + Duration::from_millis(last.load(Ordering::Relaxed));
            let deadline = idle_since + opts.idle_timeout;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    };
    let both = async { tokio::join!(a2c, c2a) };
    let (agent_to_console, console_to_agent, idle) = tokio::select! {
        (a, c) = both => (a, c, false),
        () = watchdog => (0, 0, true),
    };
    let first = first.load(Ordering::Relaxed);
    SpliceStats {
        agent_to_console,
        console_to_agent,
        idle,
        first_answer: (first != NOT_YET).then(|| Duration::from_micros(first)),
    }
}

/// `first` before any byte has passed.
const NOT_YET: u64 = u64::MAX;

/// When bytes last passed either way, and (for one direction) when the
/// first did, in time since the splice began.
#[derive(Clone, Copy)]
struct Clock<'a> {
    last: &'a AtomicU64,
    first: Option<&'a AtomicU64>,
    start: Instant,
}

fn pump<'a>(
    mut from: RecvStream,
    mut to: SendStream,
    dir: Direction,
    opts: &'a SpliceOptions,
    clock: Clock<'a>,
) -> Pin<Box<dyn Future<Output = u64> + Send + 'a>> {
    Box::pin(async move {
        let mut moved: u64 = 0;
        let mut budget = Pacer::new(opts.bytes_per_sec);
        loop {
            match from.read_chunk(CHUNK, true).await {
                Ok(Some(chunk)) => {
                    if let Some(tap) = &opts.tap {
                        tap(dir, &chunk.bytes);
                    }
                    budget.spend(chunk.bytes.len() as u64).await;
                    moved += chunk.bytes.len() as u64;
                    let Clock { last, first, start } = clock;
                    last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    if let Some(first) = first {
                        let at = start.elapsed().as_micros() as u64;
                        let _ = first.compare_exchange(
                            NOT_YET,
                            at,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                    if to.write_chunk(chunk.bytes).await.is_err() {
                        let _ = from.stop(0u32.into());
                        return moved;
                    }
                }
                Ok(None) => {
                    let _ = to.finish();
                    // Wait until the peer has everything, so closing the
                    // connections afterwards cannot cut off the last bytes.
                    let _ = tokio::time::timeout(FLUSH_WAIT, to.stopped()).await;
                    return moved;
                }
                Err(_) => {
                    let _ = to.reset(0u32.into());
                    return moved;
                }
            }
        }
    })
}

/// Paces a byte stream to a rate: a token bucket holding one second's worth.
struct Pacer {
    rate: Option<u64>,
    tokens: f64,
    at: Instant,
}

impl Pacer {
    fn new(rate: Option<u64>) -> Self {
        Pacer {
            rate,
            tokens: rate.unwrap_or(0) as f64,
            at: Instant::now(),
        }
    }

    async fn spend(&mut self, n: u64) {
        let Some(rate) = self.rate.filter(|r| *r > 0) else {
            return;
        };
        let now = Instant::now();
        let rate_f = rate as f64;
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * rate_f).min(rate_f);
        self.at = now;
        self.tokens -= n as f64;
        if self.tokens < 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(-self.tokens / rate_f)).await;
        }
    }
}

/// Replaces the splice with something else: only for tests that play a
/// malicious relay (one that tries to run its own key exchange with each side).
pub type Interceptor =
    Arc<dyn Fn(Side, Side) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;
