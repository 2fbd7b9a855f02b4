//! How QUIC's datagrams reach a UDP socket: in batches through quinn-udp
//! (GSO, GRO, ECN) where the system grants its socket options, else one
//! datagram per call on a plain socket, so QUIC works everywhere (Wine, for
//! one, refuses those options). The plain way is said once in the log.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Once};
use std::task::{Context, Poll, ready};

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncUdpSocket, Endpoint, EndpointConfig, TokioRuntime, UdpPoller};
use tokio::io::Interest;

use crate::path::socket::WritablePoller;

/// Says once per process that sockets are plain.
static PLAIN_SAID: Once = Once::new();

/// The way one socket sends and receives.
pub(crate) enum UdpIo {
    Batched(UdpSocketState),
    Plain,
}

impl UdpIo {
    /// Batched when the system takes quinn-udp's options on `socket`.
    pub(crate) fn for_socket(socket: &std::net::UdpSocket) -> UdpIo {
        match UdpSocketState::new(socket.into()) {
            Ok(state) => UdpIo::Batched(state),
            Err(e) => {
                PLAIN_SAID.call_once(|| {
                    tracing::warn!(
                        "this system refuses the UDP socket options for batched sending ({e}); \
                         using plain sockets, one datagram per call"
                    );
                });
                UdpIo::Plain
            }
        }
    }

    /// Sends `transmit` (every segment of it) without waiting.
    pub(crate) fn send(&self, io: &tokio::net::UdpSocket, transmit: &Transmit) -> io::Result<()> {
        match self {
            UdpIo::Batched(state) => {
                io.try_io(Interest::WRITABLE, || state.send(io.into(), transmit))
            }
            UdpIo::Plain => {
                let segment = transmit
                    .segment_size
                    .unwrap_or(transmit.contents.len())
                    .max(1);
                for datagram in transmit.contents.chunks(segment) {
                    io.try_send_to(datagram, transmit.destination)?;
                }
                Ok(())
            }
        }
    }

    /// Receives what is waiting without blocking; how many buffers it filled.
    pub(crate) fn recv(
        &self,
        io: &tokio::net::UdpSocket,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        match self {
            UdpIo::Batched(state) => {
                io.try_io(Interest::READABLE, || state.recv(io.into(), bufs, meta))
            }
            UdpIo::Plain => {
                let (Some(buf), Some(slot)) = (bufs.first_mut(), meta.first_mut()) else {
                    return Ok(0);
                };
                let (len, addr) = io.try_recv_from(buf)?;
                *slot = RecvMeta {
                    addr,
                    len,
                    stride: len,
                    ..RecvMeta::default()
                };
                Ok(1)
            }
        }
    }

    pub(crate) fn may_fragment(&self) -> bool {
        match self {
            UdpIo::Batched(state) => state.may_fragment(),
            UdpIo::Plain => true,
        }
    }

    pub(crate) fn max_transmit_segments(&self) -> usize {
        match self {
            UdpIo::Batched(state) => state.max_gso_segments(),
            UdpIo::Plain => 1,
        }
    }

    pub(crate) fn max_receive_segments(&self) -> usize {
        match self {
            UdpIo::Batched(state) => state.gro_segments(),
            UdpIo::Plain => 1,
        }
    }
}

/// A QUIC endpoint's socket that sends and receives through [`UdpIo`].
struct Socket {
    io: Arc<tokio::net::UdpSocket>,
    way: UdpIo,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket").finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for Socket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(WritablePoller::new(self.io.clone()))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.way.send(&self.io, transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            match self.way.recv(&self.io, bufs, meta) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
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

/// A client endpoint bound to `bind`: quinn's own socket where the system
/// allows it, else a plain one. Needs a tokio runtime.
pub fn client_endpoint(bind: SocketAddr) -> io::Result<Endpoint> {
    let socket = std::net::UdpSocket::bind(bind)?;
    let way = UdpIo::for_socket(&socket);
    socket.set_nonblocking(true)?;
    let io = Arc::new(tokio::net::UdpSocket::from_std(socket)?);
    Endpoint::new_with_abstract_socket(
        EndpointConfig::default(),
        None,
        Arc::new(Socket { io, way }),
        Arc::new(TokioRuntime),
    )
}
