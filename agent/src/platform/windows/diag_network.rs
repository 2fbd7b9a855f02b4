//! IP Helper: the adapters with their DNS servers
//! (`GetAdaptersAddresses`) and the routing table (`GetIpForwardTable2`).

use std::net::IpAddr;
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{ERROR_BUFFER_OVERFLOW, ERROR_SUCCESS};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    FreeMibTable, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_MULTICAST, GAA_FLAG_SKIP_UNICAST,
    GetAdaptersAddresses, GetIpForwardTable2, IP_ADAPTER_ADDRESSES_LH, MIB_IPFORWARD_ROW2,
    MIB_IPFORWARD_TABLE2,
};
use windows_sys::Win32::NetworkManagement::Ndis::IfOperStatusUp;
use windows_sys::Win32::Networking::WinSock::{AF_UNSPEC, SOCKADDR, SOCKADDR_INET};

use super::diag::from_wide_ptr;
use crate::diag::windows::network::{AF_INET, AF_INET6, Adapter, RouteRow, ip_from_parts};

/// Largest answer accepted; a machine's adapters take a few KiB each.
const MAX_BUFFER_BYTES: u32 = 4 << 20;

/// How many times the adapter list is asked for when it grows in between.
const ATTEMPTS: usize = 4;

/// Most adapters, DNS servers per adapter and routes read.
const MAX_ADAPTERS: usize = 256;
const MAX_DNS_SERVERS: usize = 16;
const MAX_ROUTES: usize = 65_536;

/// Every adapter with its DNS servers; `None` when Windows refuses.
pub fn adapters() -> Option<Vec<Adapter>> {
    let flags = GAA_FLAG_SKIP_UNICAST | GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST;
    let mut bytes: u32 = 16 * 1024;
    let mut buf: Vec<u64> = Vec::new();
    let mut ok = false;
    for _ in 0..ATTEMPTS {
        buf = vec![0; (bytes as usize).div_ceil(8)];
        let mut size = u32::try_from(buf.len() * 8).ok()?;
        // SAFETY: an aligned buffer writable for `size` bytes.
        let r = unsafe {
            GetAdaptersAddresses(
                u32::from(AF_UNSPEC),
                flags,
                null(),
                buf.as_mut_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>(),
                &mut size,
            )
        };
        if r == ERROR_SUCCESS {
            ok = true;
            break;
        }
        if r != ERROR_BUFFER_OVERFLOW || size > MAX_BUFFER_BYTES {
            return None;
        }
        bytes = size;
    }
    if !ok {
        return None;
    }
    let mut out = Vec::new();
    let mut next = buf.as_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>();
    while !next.is_null() && out.len() < MAX_ADAPTERS {
        // SAFETY: the first record is at the buffer's start and each `Next`
        // points to another inside it, or is null; the buffer lives on.
        let a = unsafe { &*next };
        let mut dns_servers = Vec::new();
        let mut server = a.FirstDnsServerAddress;
        while !server.is_null() && dns_servers.len() < MAX_DNS_SERVERS {
            // SAFETY: as above, a list inside the buffer ending in null.
            let s = unsafe { &*server };
            // SAFETY: the address points into the buffer with its length.
            if let Some(ip) =
                unsafe { sockaddr_ip(s.Address.lpSockaddr, s.Address.iSockaddrLength) }
            {
                dns_servers.push(ip);
            }
            server = s.Next;
        }
        out.push(Adapter {
            // SAFETY: both views of the union are plain integers.
            index: unsafe { a.Anonymous1.Anonymous.IfIndex },
            // SAFETY: a NUL-terminated name inside the buffer, or null.
            name: unsafe { from_wide_ptr(a.FriendlyName) },
            if_type: a.IfType,
            up: a.OperStatus == IfOperStatusUp,
            dns_servers,
        });
        next = a.Next;
    }
    Some(out)
}

/// The address in a `SOCKADDR` of `len` bytes.
///
/// # Safety
/// `p` must be null or point to `len` readable bytes.
unsafe fn sockaddr_ip(p: *const SOCKADDR, len: i32) -> Option<IpAddr> {
    let len = usize::try_from(len).ok()?;
    if p.is_null() || len < std::mem::size_of::<SOCKADDR>() {
        return None;
    }
    // The family is the first two bytes of every socket address.
    // SAFETY: at least a SOCKADDR's bytes are readable.
    let family = unsafe { (*p).sa_family };
    let inet = p.cast::<SOCKADDR_INET>();
    match family {
        AF_INET => {
            // SAFETY: an IPv4 address fits in a SOCKADDR, checked above.
            let v4 = unsafe { (*inet).Ipv4.sin_addr.S_un.S_addr };
            ip_from_parts(family, v4.to_ne_bytes(), [0; 16])
        }
        AF_INET6 if len >= std::mem::size_of::<SOCKADDR_INET>() => {
            // SAFETY: the length covers an IPv6 socket address.
            let v6 = unsafe { (*inet).Ipv6.sin6_addr.u.Byte };
            ip_from_parts(family, [0; 4], v6)
        }
        _ => None,
    }
}

fn inet_ip(a: &SOCKADDR_INET) -> Option<IpAddr> {
    // SAFETY: every view of the union starts with the family, and the
    // union is as large as its largest view.
    let family = unsafe { a.si_family };
    match family {
        // SAFETY: the family says which view is meant.
        AF_INET => ip_from_parts(
            family,
            unsafe { a.Ipv4.sin_addr.S_un.S_addr }.to_ne_bytes(),
            [0; 16],
        ),
        // SAFETY: as above.
        AF_INET6 => ip_from_parts(family, [0; 4], unsafe { a.Ipv6.sin6_addr.u.Byte }),
        _ => None,
    }
}

/// Every row of the routing table; `None` when Windows refuses.
pub fn routes() -> Option<Vec<RouteRow>> {
    let mut table: *mut MIB_IPFORWARD_TABLE2 = null_mut();
    // SAFETY: a valid place for the table pointer; freed below.
    let r = unsafe { GetIpForwardTable2(AF_UNSPEC, &mut table) };
    if r != ERROR_SUCCESS || table.is_null() {
        return None;
    }
    // SAFETY: Windows allocated the table with `NumEntries` rows after the
    // count; it stays valid until FreeMibTable.
    let rows: Vec<RouteRow> = unsafe {
        let count = ((*table).NumEntries as usize).min(MAX_ROUTES);
        let first = std::ptr::addr_of!((*table).Table).cast::<MIB_IPFORWARD_ROW2>();
        std::slice::from_raw_parts(first, count)
            .iter()
            .filter_map(|row| {
                Some(RouteRow {
                    destination: inet_ip(&row.DestinationPrefix.Prefix)?,
                    prefix_len: row.DestinationPrefix.PrefixLength,
                    next_hop: inet_ip(&row.NextHop)?,
                    interface_index: row.InterfaceIndex,
                })
            })
            .collect()
    };
    // SAFETY: the table Windows allocated above, freed once.
    unsafe { FreeMibTable(table.cast()) };
    Some(rows)
}
