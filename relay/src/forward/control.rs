//! The relay's QUIC control endpoint's socket: it reads what the forwarder
//! hands it (every datagram that is QUIC, not forwarded data) and sends
//! straight out of the relay's one UDP socket.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use quinn::udp::{EcnCodepoint, RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncUdpSocket, UdpPoller};
use sprijin_proto::path::WritablePoller;
use tokio::io::Interest;
use tokio::sync::mpsc;

/// One datagram for the control endpoint.
pub struct Inbound {
    pub from: SocketAddr,
    pub bytes: Vec<u8>,
    pub ecn: Option<EcnCodepoint>,
    pub dst_ip: Option<IpAddr>,
}

pub struct ControlSocket {
    pub(super) io: Arc<tokio::net::UdpSocket>,
    pub(super) state: Arc<UdpSocketState>,
    pub(super) inbound: Mutex<mpsc::Receiver<Inbound>>,
}

impl fmt::Debug for ControlSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControlSocket")
    }
}

impl AsyncUdpSocket for ControlSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(WritablePoller::new(self.io.clone()))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.io.try_io(Interest::WRITABLE, || {
            self.state.send((&*self.io).into(), transmit)
        })
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut inbound = match self.inbound.lock() {
            Ok(rx) => rx,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let next = if n == 0 {
                match inbound.poll_recv(cx) {
                    Poll::Ready(Some(d)) => d,
                    // The forwarder stopped: the relay is shutting down.
                    Poll::Ready(None) => return Poll::Pending,
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                match inbound.try_recv() {
                    Ok(d) => d,
                    Err(_) => break,
                }
            };
            let len = next.bytes.len().min(bufs[n].len());
            bufs[n][..len].copy_from_slice(&next.bytes[..len]);
            meta[n] = RecvMeta {
                addr: next.from,
                len,
                stride: len,
                ecn: next.ecn,
                dst_ip: next.dst_ip,
            };
            n += 1;
        }
        Poll::Ready(Ok(n))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }
}
