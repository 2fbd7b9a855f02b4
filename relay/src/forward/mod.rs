//! The datagram forwarder. It owns the relay's one UDP socket: datagrams
//! that carry a ticket's header go, header removed, to the other side's
//! last known address (a hash lookup and an address compare; no QUIC state
//! and no cryptography); a presentation from a new address is challenged,
//! and the echo binds or moves a side's address (see `table`); every
//! datagram leaves from the relay address its receiver sends to, so a relay
//! with several addresses works; a waiting agent's wait is answered from
//! the parked table (see `crate::parked`); everything else is QUIC for the
//! relay's control endpoint, which reads it through [`ControlSocket`] and
//! sends straight out of the same socket. So control, waiting and data
//! share one UDP port.
//!
//! The socket is read and written in batches with `quinn-udp` (GRO, GSO,
//! `recvmmsg`): forwarded datagrams that arrived together for the same
//! address leave together. After forwarding, the forwarder reads on for a
//! moment rather than sleep, unless traffic is bulk (see `linger`).

mod control;
mod linger;
mod table;

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use sprijin_proto::path::wire::{Side, TicketMint};
use tokio::io::Interest;
use tokio::sync::mpsc;
use tracing::{debug, warn};

pub use control::ControlSocket;
use control::Inbound;
use linger::Linger;
use table::{Now, Release, Table, Verdict};

use crate::metrics::Metrics;
use crate::parked::{Arrivals, Parked, Tell};

/// Which way bytes were going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    AgentToConsole,
    ConsoleToAgent,
}

/// Sees every datagram payload the relay forwards (tests use it to prove
/// the relay sees nothing readable).
pub type Tap = Arc<dyn Fn(Direction, &[u8]) + Send + Sync>;

/// The UDP buffers the relay asks for. Every client shares the relay's one
/// socket, so the system default (about 200 KiB on Linux) overflows under a
/// burst of handshakes or a fast session. The system may grant less (Linux
/// caps it at `net.core.rmem_max`); that is not an error.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Room for one read: a GRO batch is at most 64 KiB.
const READ_BUF: usize = 64 * 1024;

/// The most bytes one GSO send may carry: the kernel refuses a batch
/// whose total does not fit one UDP length (64 KiB with headers).
const MAX_GSO_BYTES: usize = 60 * 1024;

/// How often idle sessions and the ask limiter are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The least time between two asks to one address.
const ASK_EVERY: Duration = Duration::from_millis(5);

/// Addresses remembered for the ask limit; past this it starts afresh.
const ASKED_MAX: usize = 65_536;

/// Datagrams queued for the control endpoint; more are dropped, as a full
/// socket buffer would.
const CONTROL_QUEUE: usize = 4096;

/// What the forwarder needs from the relay's configuration.
pub struct ForwardOptions {
    pub mint: TicketMint,
    pub bytes_per_sec: Option<u64>,
    pub idle_timeout: Duration,
    /// Forwarding entries at most (`--max-sessions`).
    pub max_sessions: usize,
    pub tap: Option<Tap>,
    pub metrics: Arc<Metrics>,
    /// Waiting agents without a connection, whose waits the forwarder
    /// answers.
    pub parked: Arc<Parked>,
    /// Claims whose agent the relay waits to see bind.
    pub arrivals: Arc<Arrivals>,
}

pub struct Forwarder {
    io: Arc<tokio::net::UdpSocket>,
    state: Arc<UdpSocketState>,
    table: Table,
    control: mpsc::Sender<Inbound>,
    options: ForwardOptions,
    asked: HashMap<SocketAddr, Instant>,
}

/// Binds the relay's socket: the forwarder that reads it, and the socket
/// the control endpoint uses. Needs a tokio runtime.
pub fn bind(listen: SocketAddr, options: ForwardOptions) -> io::Result<(Forwarder, ControlSocket)> {
    let socket = std::net::UdpSocket::bind(listen)?;
    let state = UdpSocketState::new((&socket).into())?;
    if let Err(e) = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER) {
        warn!("cannot enlarge the UDP receive buffer: {e}");
    }
    if let Err(e) = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER) {
        warn!("cannot enlarge the UDP send buffer: {e}");
    }
    socket.set_nonblocking(true)?;
    let io = Arc::new(tokio::net::UdpSocket::from_std(socket)?);
    let state = Arc::new(state);
    let (tx, rx) = mpsc::channel(CONTROL_QUEUE);
    let control = ControlSocket {
        io: io.clone(),
        state: state.clone(),
        inbound: Mutex::new(rx),
    };
    let forwarder = Forwarder {
        io,
        state,
        table: Table::new(
            options.mint.clone(),
            options.bytes_per_sec,
            options.max_sessions,
        ),
        control: tx,
        options,
        asked: HashMap::new(),
    };
    Ok((forwarder, control))
}

/// Datagrams to send after one read, grouped for GSO.
struct Out {
    buf: Vec<u8>,
    groups: Vec<Group>,
    max_segments: usize,
    /// Forwarded in this batch, counted into the metrics once per batch.
    datagrams: u64,
    bytes: u64,
}

struct Group {
    to: SocketAddr,
    /// The relay's address to send from.
    via: Option<IpAddr>,
    start: usize,
    end: usize,
    segment: usize,
    count: usize,
    /// A shorter datagram ended it; nothing more may join.
    closed: bool,
}

impl Out {
    fn push(&mut self, to: SocketAddr, via: Option<IpAddr>, payload: &[u8]) {
        let len = payload.len();
        let joins = self.groups.last().is_some_and(|g| {
            g.to == to
                && g.via == via
                && !g.closed
                && g.count < self.max_segments
                && len <= g.segment
                && g.end - g.start + len <= MAX_GSO_BYTES
                && g.end == self.buf.len()
        });
        self.buf.extend_from_slice(payload);
        let end = self.buf.len();
        match self.groups.last_mut() {
            Some(g) if joins => {
                g.end = end;
                g.count += 1;
                g.closed = len < g.segment;
            }
            _ => self.groups.push(Group {
                to,
                via,
                start: end - len,
                end,
                segment: len,
                count: 1,
                closed: false,
            }),
        }
    }

    fn forwarded(&mut self, len: usize) {
        self.datagrams += 1;
        self.bytes += len as u64;
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.groups.clear();
        self.datagrams = 0;
        self.bytes = 0;
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Forwarder {
    /// Forwards until the task is stopped.
    pub async fn run(mut self) {
        let batch = quinn::udp::BATCH_SIZE;
        let mut storage = vec![0u8; batch * READ_BUF];
        let mut meta = vec![RecvMeta::default(); batch];
        let mut out = Out {
            buf: Vec::with_capacity(READ_BUF * 2),
            groups: Vec::new(),
            max_segments: self.state.max_gso_segments().max(1),
            datagrams: 0,
            bytes: 0,
        };
        let mut sweep_at = Instant::now() + SWEEP_EVERY;
        // One timer for the sweeps, reset only when it fires: making one
        // per read would cost a timer registration per batch.
        let sweep = tokio::time::sleep_until(sweep_at.into());
        tokio::pin!(sweep);
        let mut linger = Linger::new(Instant::now());
        loop {
            let at = Instant::now();
            let reading_on = linger.reading_on(at);
            if reading_on && linger.give_way(at) {
                tokio::task::yield_now().await;
            }
            let ready = reading_on
                || tokio::select! {
                    biased;
                    r = self.io.readable() => r.is_ok(),
                    () = &mut sweep => false,
                };
            let now = Now {
                instant: Instant::now(),
                unix: unix_now(),
            };
            if now.instant >= sweep_at {
                self.sweep(now.instant);
                sweep_at = now.instant + SWEEP_EVERY;
                sweep.as_mut().reset(sweep_at.into());
            }
            if !ready {
                continue;
            }
            let mut bufs: Vec<IoSliceMut<'_>> =
                storage.chunks_mut(READ_BUF).map(IoSliceMut::new).collect();
            let read = if reading_on {
                // Straight from the socket, without waiting for the
                // runtime to say it is readable.
                self.state.recv((&*self.io).into(), &mut bufs, &mut meta)
            } else {
                self.io.try_io(Interest::READABLE, || {
                    self.state.recv((&*self.io).into(), &mut bufs, &mut meta)
                })
            };
            let n = match read {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if reading_on {
                        // Other programs on this core run first.
                        std::thread::yield_now();
                    }
                    continue;
                }
                Err(e) => {
                    debug!("udp receive failed: {e}");
                    continue;
                }
            };
            for (m, buf) in meta.iter().zip(&bufs).take(n) {
                let len = m.len.min(buf.len());
                let stride = m.stride.clamp(1, len.max(1));
                for d in buf[..len].chunks(stride) {
                    self.one(m, d, now, &mut out);
                }
            }
            let metrics = &self.options.metrics;
            metrics.datagrams_forwarded.inc_by(out.datagrams);
            metrics.bytes_forwarded.inc_by(out.bytes);
            let forwarded = out.bytes;
            self.flush(&mut out).await;
            linger.forwarded(forwarded, Instant::now());
        }
    }

    fn one(&mut self, m: &RecvMeta, d: &[u8], now: Now, out: &mut Out) {
        let metrics = &self.options.metrics;
        match self.table.handle(m.addr, m.dst_ip, d, now) {
            Verdict::Forward {
                to,
                via,
                from,
                payload,
            } => {
                if let Some(tap) = &self.options.tap {
                    tap(direction(from), payload);
                }
                out.forwarded(payload.len());
                out.push(to, via, payload);
            }
            Verdict::Wait => {
                match self
                    .options
                    .parked
                    .answer(m.addr, m.dst_ip, d, now.instant.into(), now.unix)
                {
                    Some(Tell { to, via, datagram }) => out.push(to, via, &datagram),
                    None => metrics.dropped(crate::metrics::Dropped::Forged),
                }
            }
            Verdict::Control => {
                let _ = self.control.try_send(Inbound {
                    from: m.addr,
                    bytes: d.to_vec(),
                    ecn: m.ecn,
                    dst_ip: m.dst_ip,
                });
            }
            Verdict::Drop { why, ask } => {
                metrics.dropped(why);
                if let Some(ask) = ask
                    && self.may_ask(m.addr, now.instant)
                {
                    out.push(m.addr, m.dst_ip, &ask);
                }
            }
            // Together shorter than the presentation they answer, one for
            // one, so they need no limiter (the ask's would drop the answer
            // to a presentation the ask itself asked for).
            Verdict::Challenge(challenge, seen) => {
                out.push(m.addr, m.dst_ip, &challenge);
                out.push(m.addr, m.dst_ip, &seen);
            }
            Verdict::Bound { release, arrived } => {
                metrics.forwarding_entries.set(self.table.len() as i64);
                if let Some(session) = arrived {
                    self.options.arrivals.arrived(session);
                }
                for Release {
                    to,
                    via,
                    from,
                    bytes,
                } in release
                {
                    if let Some(tap) = &self.options.tap {
                        tap(direction(from), &bytes);
                    }
                    out.forwarded(bytes.len());
                    out.push(to, via, &bytes);
                }
            }
            Verdict::Held | Verdict::Ignore => {}
        }
    }

    /// What sends the relay's own datagrams to waiting agents.
    pub fn teller(&self) -> Teller {
        Teller {
            io: self.io.clone(),
            state: self.state.clone(),
        }
    }

    fn may_ask(&mut self, to: SocketAddr, now: Instant) -> bool {
        if self.asked.len() >= ASKED_MAX {
            self.asked.clear();
        }
        match self.asked.get(&to) {
            Some(at) if now.saturating_duration_since(*at) < ASK_EVERY => false,
            _ => {
                self.asked.insert(to, now);
                true
            }
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.table.sweep(now, self.options.idle_timeout);
        self.asked
            .retain(|_, at| now.saturating_duration_since(*at) < ASK_EVERY);
        self.options
            .metrics
            .forwarding_entries
            .set(self.table.len() as i64);
        self.options
            .metrics
            .forwarding_held_bytes
            .set(self.table.held_bytes() as i64);
    }

    async fn flush(&self, out: &mut Out) {
        for g in &out.groups {
            let transmit = Transmit {
                destination: g.to,
                ecn: None,
                contents: &out.buf[g.start..g.end],
                segment_size: (g.count > 1).then_some(g.segment),
                src_ip: g.via,
            };
            self.send(&transmit).await;
        }
        out.clear();
    }

    async fn send(&self, transmit: &Transmit<'_>) {
        loop {
            let sent = self.io.try_io(Interest::WRITABLE, || {
                self.state.send((&*self.io).into(), transmit)
            });
            match sent {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.io.writable().await.is_err() {
                        return;
                    }
                }
                // Sent, or an error quinn-udp already logged: UDP is best effort.
                _ => return,
            }
        }
    }
}

/// Sends the relay's datagrams to waiting agents out of the relay's
/// socket, best effort, as UDP is.
pub struct Teller {
    io: Arc<tokio::net::UdpSocket>,
    state: Arc<UdpSocketState>,
}

impl Teller {
    pub fn tell(&self, tell: &Tell) {
        let transmit = Transmit {
            destination: tell.to,
            ecn: None,
            contents: &tell.datagram,
            segment_size: None,
            src_ip: tell.via,
        };
        let _ = self.io.try_io(Interest::WRITABLE, || {
            self.state.send((&*self.io).into(), &transmit)
        });
    }
}

fn direction(from: Side) -> Direction {
    match from {
        Side::Agent => Direction::AgentToConsole,
        Side::Console => Direction::ConsoleToAgent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gso_batch_stays_within_what_the_kernel_sends() {
        let mut out = Out {
            buf: Vec::new(),
            groups: Vec::new(),
            max_segments: 64,
            datagrams: 0,
            bytes: 0,
        };
        let to = SocketAddr::from(([127, 0, 0, 1], 9));
        for _ in 0..100 {
            out.push(to, None, &[0x40; 1443]);
        }
        out.push(to, None, &[0x40; 100]);
        out.push(to, None, &[0x40; 1443]);
        let mut total = 0;
        for g in &out.groups {
            assert!(g.end - g.start <= MAX_GSO_BYTES);
            assert!(g.count <= 64);
            total += g.count;
        }
        assert_eq!(total, 102);
        assert!(out.groups.len() >= 3, "a shorter datagram ends its batch");
    }
}
