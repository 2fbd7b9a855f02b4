//! The relay's health and metrics endpoint as tests read it: plain HTTP
//! GETs on loopback and values read from the exposition text.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::STEP;

/// A loopback TCP address free now, for an endpoint to listen on.
pub fn free_tcp_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// One HTTP GET of `path`: the whole answer, or what went wrong.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut socket = TcpStream::connect(addr)?;
    socket.set_read_timeout(Some(STEP))?;
    write!(socket, "GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n")?;
    let mut text = String::new();
    socket.read_to_string(&mut text)?;
    Ok(text)
}

/// The answer to `path` once the endpoint serves.
pub fn get_when_up(addr: SocketAddr, path: &str) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        match http_get(addr, path) {
            Ok(text) if text.starts_with("HTTP/1.1") => return text,
            other => assert!(
                Instant::now() < deadline,
                "{addr} does not answer: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A metric's value from the exposition text, 0 when absent.
pub fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

/// Waits until `series` reaches `want` in the relay's metrics.
pub fn wait_metric(addr: SocketAddr, series: &str, want: u64) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let text = get_when_up(addr, "/metrics");
        if value(&text, series) >= want {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {want}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the relay at metrics address `addr` holds no connection
/// and `waiting` codes wait; the metrics text then.
pub fn parked(addr: SocketAddr, waiting: u64) -> String {
    let deadline = Instant::now() + STEP;
    loop {
        let text = get_when_up(addr, "/metrics");
        if value(&text, "sprijin_relay_connections_open") == 0
            && value(&text, "sprijin_relay_nameplates_waiting") == waiting
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the relay still holds a connection, or not {waiting} waiting:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
