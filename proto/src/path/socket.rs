//! The client's socket on the relayed path: a `quinn::AsyncUdpSocket` that
//! puts the ticket's header on every datagram it sends to the relay, takes
//! in only the relay's datagrams, presents the ticket when the relay asks
//! (and once as soon as it is made, so the relay learns this side's
//! address before any QUIC packet, and again after half a second without a
//! word from the relay and each second while that lasts, so a restarted
//! relay learns a side that only receives), and echoes the relay's
//! challenge.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

use super::direct::{DirectState, Inbound};
use super::wire::{self, DATA_HEADER_LEN, Datagram, Side};
use crate::udp::UdpIo;

/// The least time between two presentations, so a burst of the relay's
/// asks (one per datagram it could not place) costs one answer.
const PRESENT_EVERY: Duration = Duration::from_millis(5);

/// The UDP receive buffer a path's socket asks for.
pub const RECV_BUFFER: usize = 2 * 1024 * 1024;

/// The first wait before presenting again when the relay has not been
/// heard from; it doubles each time, for this many times (about 6 s).
const PRESENT_RETRY: Duration = Duration::from_millis(50);
const PRESENT_RETRIES: u32 = 7;

/// Presents again when the relay was silent this long, and again each
/// [`PRESENT_WHILE_SILENT`] while it stays so: a restarted relay has
/// forgotten this side, and one that only receives would otherwise send
/// nothing until its keep-alive. Silence is looked for each
/// [`SILENCE_CHECK`].
const PRESENT_WHEN_SILENT: Duration = Duration::from_millis(500);
const PRESENT_WHILE_SILENT: Duration = Duration::from_secs(1);
const SILENCE_CHECK: Duration = Duration::from_millis(250);

/// What a side needs to present its ticket, shared by its sockets so the
/// counter keeps rising across a rebind.
pub(crate) struct Presenter {
    token: Vec<u8>,
    key: [u8; 32],
    session: u64,
    side: Side,
    counter: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl Presenter {
    pub(crate) fn new(ticket: &super::Ticket) -> Option<Presenter> {
        let fields = wire::read_token(&ticket.token)?;
        Some(Presenter {
            token: ticket.token.clone(),
            key: ticket.key,
            session: fields.session,
            side: fields.side,
            // Starts at the clock, in microseconds, so a new process with the
            // same ticket still presents a counter above the last one seen.
            counter: AtomicU64::new(now_micros()),
            last: Mutex::new(None),
        })
    }

    /// Which side's ticket this presents.
    pub(crate) fn side(&self) -> Side {
        self.side
    }

    fn next(&self) -> Option<Vec<u8>> {
        let now = now_micros();
        let prev = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(c.saturating_add(1).max(now))
            })
            .unwrap_or(now);
        let counter = prev.saturating_add(1).max(now);
        wire::presentation(&self.token, &self.key, counter)
    }

    /// Whether enough time passed since the last presentation.
    fn due(&self) -> bool {
        let Ok(mut last) = self.last.lock() else {
            return true;
        };
        let now = Instant::now();
        match *last {
            Some(t) if now.duration_since(t) < PRESENT_EVERY => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One local socket of a relayed path.
pub(crate) struct TicketedSocket {
    io: Arc<tokio::net::UdpSocket>,
    way: UdpIo,
    relay: SocketAddr,
    header: [u8; DATA_HEADER_LEN],
    presenter: Arc<Presenter>,
    scratch: Mutex<Vec<u8>>,
    /// The last datagram sent, header and all: the relay dropped it if it
    /// had to ask who this is, so it goes again once this side is bound.
    last_sent: Mutex<Vec<u8>>,
    /// Whether anything came from the relay on this socket yet.
    heard: AtomicBool,
    /// When the relay was last heard from, in milliseconds since `born`.
    heard_at: AtomicU64,
    born: Instant,
    /// The direct path, shared by this side's sockets.
    direct: Arc<DirectState>,
}

impl fmt::Debug for TicketedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketedSocket")
            .field("relay", &self.relay)
            .finish_non_exhaustive()
    }
}

impl TicketedSocket {
    /// Wraps `socket` and presents the ticket at once, again a few times
    /// until the relay is heard from (a lost first presentation would
    /// leave the relay holding the peer's first packets with nowhere to
    /// send them). Needs a tokio runtime.
    pub(crate) fn new(
        socket: std::net::UdpSocket,
        relay: SocketAddr,
        presenter: Arc<Presenter>,
        direct: Arc<DirectState>,
    ) -> io::Result<Arc<TicketedSocket>> {
        let way = UdpIo::for_socket(&socket);
        // The relay forwards in batches, so a burst arrives at once; the
        // system may grant less than asked, which is not an error.
        if let UdpIo::Batched(state) = &way {
            let _ = state.set_recv_buffer_size((&socket).into(), RECV_BUFFER);
        }
        // The first presentation goes out before the socket is handed to
        // the runtime, which does not know yet that it is writable.
        if let Some(p) = presenter.next() {
            let _ = socket.send_to(&p, relay);
        }
        socket.set_nonblocking(true)?;
        let io = tokio::net::UdpSocket::from_std(socket)?;
        let s = Arc::new(TicketedSocket {
            io: Arc::new(io),
            way,
            relay,
            header: wire::data_header(presenter.session, presenter.side),
            presenter,
            scratch: Mutex::new(Vec::new()),
            last_sent: Mutex::new(Vec::new()),
            heard: AtomicBool::new(false),
            heard_at: AtomicU64::new(0),
            born: Instant::now(),
            direct,
        });
        s.direct.attach(&s);
        let weak = Arc::downgrade(&s);
        tokio::spawn(async move {
            let mut wait = PRESENT_RETRY;
            for _ in 0..PRESENT_RETRIES {
                tokio::time::sleep(wait).await;
                let Some(s) = weak.upgrade() else { return };
                if s.heard.load(Ordering::Relaxed) {
                    break;
                }
                s.present(true);
                wait *= 2;
            }
            // When this side last presented for silence, in milliseconds
            // since the socket was made.
            let mut presented_at = None::<u64>;
            loop {
                tokio::time::sleep(SILENCE_CHECK).await;
                let Some(s) = weak.upgrade() else { return };
                let now = s.since_born();
                let heard_at = s.heard_at.load(Ordering::Relaxed);
                let again = presented_at.is_none_or(|at| {
                    heard_at > at
                        || Duration::from_millis(now.saturating_sub(at)) >= PRESENT_WHILE_SILENT
                });
                if s.silent_for() >= PRESENT_WHEN_SILENT && again {
                    s.present(true);
                    presented_at = Some(now);
                }
            }
        });
        Ok(s)
    }

    fn since_born(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long since the relay was last heard from.
    fn silent_for(&self) -> Duration {
        let at = self.heard_at.load(Ordering::Relaxed);
        Duration::from_millis(self.since_born().saturating_sub(at))
    }

    /// Answers the relay's challenge with the echo that proves this side
    /// receives here, then sends the last datagram again: a relay that had
    /// to ask dropped it, and QUIC, whose timers back off while the relay
    /// was away, might not send again for seconds.
    fn echo(&self, nonce: &[u8]) {
        let Some(e) = wire::echo(&self.presenter.token, &self.presenter.key, nonce) else {
            return;
        };
        self.send_raw(&e);
        let last = match self.last_sent.lock() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if !last.is_empty() {
            self.send_raw(&last);
        }
    }

    /// Sends a presentation; `force` skips the rate limit.
    fn present(&self, force: bool) {
        if !force && !self.presenter.due() {
            return;
        }
        let Some(p) = self.presenter.next() else {
            return;
        };
        self.send_raw(&p);
    }

    /// Sends one datagram of ours (not QUIC) to the relay.
    fn send_raw(&self, contents: &[u8]) {
        self.send_to(self.relay, contents);
    }

    /// Sends one datagram of ours (not QUIC) to `to`, best effort.
    pub(crate) fn send_to(&self, to: SocketAddr, contents: &[u8]) {
        let transmit = Transmit {
            destination: to,
            ecn: None,
            contents,
            segment_size: None,
            src_ip: None,
        };
        // Best effort: if it is lost, it is asked for or sent again.
        let _ = self.way.send(&self.io, &transmit);
    }

    /// The socket's local address, if it still has one.
    pub(crate) fn local_addr_now(&self) -> Option<SocketAddr> {
        self.io.local_addr().ok()
    }

    /// Looks at one received buffer from the relay: handles an ask at its
    /// end and says how many bytes of QUIC remain.
    fn take_asks(&self, buf: &[u8], meta: &RecvMeta) -> usize {
        let stride = meta.stride.max(1);
        let len = meta.len.min(buf.len());
        let last_at = if len == 0 {
            0
        } else {
            (len - 1) / stride * stride
        };
        match wire::parse(&buf[last_at..len]) {
            Datagram::Quic => len,
            Datagram::Ask { session, side }
                if session == self.presenter.session && side == self.presenter.side =>
            {
                self.present(false);
                last_at
            }
            Datagram::Challenge {
                session,
                side,
                nonce,
            } if session == self.presenter.session && side == self.presenter.side => {
                self.echo(nonce);
                last_at
            }
            Datagram::Seen {
                session,
                side,
                addr,
            } if session == self.presenter.session && side == self.presenter.side => {
                self.direct.set_reflexive(addr);
                last_at
            }
            // Anything else that is not QUIC is dropped with what follows.
            _ => last_at,
        }
    }
}

/// `transmit` sent to `to` on the direct path. The source address is left
/// to the system: the one the connection learnt on the relay's path may
/// not reach the other side (loopback towards a relay on this machine,
/// another interface towards a relay elsewhere), and the other side takes
/// datagrams only from the address its probes proved.
fn off_relay<'a>(transmit: &Transmit<'a>, to: SocketAddr) -> Transmit<'a> {
    Transmit {
        destination: to,
        src_ip: None,
        ..*transmit
    }
}

impl TicketedSocket {
    fn console_is_direct(&self) -> bool {
        self.presenter.side == Side::Console && self.direct.route().is_some()
    }

    /// Looks at one received buffer from elsewhere than the relay: answers
    /// a probe, and says how many bytes of QUIC from the other side's
    /// proven address it holds. The console's connection names the relay
    /// as its peer, so what the agent sends directly is given the relay's
    /// address, and taken only while the console's datagrams go there.
    fn take_direct(&self, buf: &[u8], meta: &mut RecvMeta) -> usize {
        let len = meta.len.min(buf.len());
        match self.direct.inbound(&buf[..len], meta.addr) {
            Inbound::Quic if self.presenter.side == Side::Console => {
                // Only from where the connection goes now: two paths under
                // one name would mix their path validations.
                if self.direct.route() != Some(meta.addr) {
                    return 0;
                }
                meta.addr = self.relay;
                len
            }
            Inbound::Quic => len,
            Inbound::Reply(answer) => {
                self.send_to(meta.addr, &answer);
                0
            }
            Inbound::Drop => 0,
        }
    }
}

impl AsyncUdpSocket for TicketedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(WritablePoller::new(self.io.clone()))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if transmit.destination != self.relay {
            // Besides the relay, only the other side's proven address.
            if self.direct.proven(transmit.destination) {
                return self
                    .way
                    .send(&self.io, &off_relay(transmit, transmit.destination));
            }
            return Ok(());
        }
        if let Some(peer) = self.direct.route() {
            // The console on a direct path: the connection still names the
            // relay, its datagrams go to the agent.
            return self.way.send(&self.io, &off_relay(transmit, peer));
        }
        let mut scratch = match self.scratch.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        scratch.clear();
        let seg = transmit
            .segment_size
            .unwrap_or(transmit.contents.len())
            .max(1);
        for chunk in transmit.contents.chunks(seg) {
            scratch.extend_from_slice(&self.header);
            scratch.extend_from_slice(chunk);
        }
        let with_header = seg + DATA_HEADER_LEN;
        if let Ok(mut last) = self.last_sent.lock() {
            let from = (scratch.len().saturating_sub(1) / with_header) * with_header;
            last.clear();
            last.extend_from_slice(&scratch[from..]);
        }
        let out = Transmit {
            destination: transmit.destination,
            ecn: transmit.ecn,
            contents: &scratch,
            segment_size: transmit.segment_size.map(|s| s + DATA_HEADER_LEN),
            src_ip: transmit.src_ip,
        };
        self.way.send(&self.io, &out)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            let Ok(n) = self.way.recv(&self.io, bufs, meta) else {
                continue;
            };
            // Keep only QUIC, from the relay or the other side's proven
            // address, moved to the front.
            let mut kept = 0;
            for i in 0..n {
                let len = if meta[i].addr == self.relay {
                    self.heard.store(true, Ordering::Relaxed);
                    self.heard_at.store(self.since_born(), Ordering::Relaxed);
                    let quic = self.take_asks(&bufs[i][..], &meta[i]);
                    // The console's connection sees one path at a time
                    // (it names the relay either way): while it is direct,
                    // what still comes through the relay is dropped.
                    if self.console_is_direct() { 0 } else { quic }
                } else {
                    self.take_direct(&bufs[i][..], &mut meta[i])
                };
                if len == 0 {
                    continue;
                }
                if kept != i {
                    let (front, back) = bufs.split_at_mut(i);
                    front[kept][..len].copy_from_slice(&back[0][..len]);
                    meta[kept] = meta[i];
                }
                meta[kept].len = len;
                meta[kept].stride = meta[kept].stride.min(len);
                kept += 1;
            }
            if kept > 0 {
                return Poll::Ready(Ok(kept));
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.way.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        self.way.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.way.max_receive_segments()
    }
}

type WritableFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send + Sync>>;

/// Wakes its task when a tokio UDP socket may be written again; one per
/// interested task, as quinn asks.
pub struct WritablePoller {
    io: Arc<tokio::net::UdpSocket>,
    waiting: Option<WritableFuture>,
}

impl WritablePoller {
    pub fn new(io: Arc<tokio::net::UdpSocket>) -> WritablePoller {
        WritablePoller { io, waiting: None }
    }
}

impl fmt::Debug for WritablePoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WritablePoller")
    }
}

impl UdpPoller for WritablePoller {
    fn poll_writable(mut self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let io = this.io.clone();
        let fut = this
            .waiting
            .get_or_insert_with(|| Box::pin(async move { io.writable().await }));
        let result = fut.as_mut().poll(cx);
        if result.is_ready() {
            this.waiting = None;
        }
        result
    }
}
