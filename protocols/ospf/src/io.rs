//! Packet I/O: one raw IPv4 socket (protocol 89) per OSPF interface. This is the only socket
//! code of the crate; the instance ([`crate::instance`]) says what to send and which groups
//! to join through its outputs, and received datagrams come back as [`RxPacket`]s.
//!
//! Each socket is bound to its device (`SO_BINDTODEVICE`), so it sees only that interface's
//! packets, and sends multicast out of it with TTL 1, no loopback and TOS 0xc0 (internetwork
//! control). The kernel builds the IP header (`IP_HDRINCL` off); received datagrams carry
//! theirs, which gives the source and destination addresses.

use std::collections::HashMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::instance::{Output, ALL_D_ROUTERS, ALL_SPF_ROUTERS};

/// IP protocol number of OSPF.
pub const IPPROTO_OSPF: i32 = 89;
/// IP precedence "internetwork control", as RFC 2328 A.1 asks.
const TOS_INTERNETWORK_CONTROL: u32 = 0xc0;

/// A received OSPF datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxPacket {
    /// Receiving interface.
    pub ifname: String,
    /// IP source.
    pub src: Ipv4Addr,
    /// IP destination.
    pub dst: Ipv4Addr,
    /// IP payload (the OSPF packet).
    pub data: Vec<u8>,
}

/// Splits a received IPv4 datagram into (source, destination, payload). None if it is not
/// a well-formed IPv4 header.
pub fn parse_ipv4(buf: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, &[u8])> {
    let first = *buf.first()?;
    if first >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(first & 0x0f) * 4;
    if ihl < 20 || buf.len() < ihl {
        return None;
    }
    let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
    let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
    Some((src, dst, &buf[ihl..]))
}

struct IfSocket {
    fd: Arc<AsyncFd<Socket>>,
    ifindex: u32,
    reader: JoinHandle<()>,
}

impl Drop for IfSocket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The raw sockets of every open interface.
pub struct OspfIo {
    socks: HashMap<String, IfSocket>,
    rx: mpsc::Sender<RxPacket>,
}

fn open_socket(ifname: &str, ifindex: u32) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_OSPF)))?;
    s.bind_device(Some(ifname.as_bytes()))?;
    s.set_header_included_v4(false)?;
    s.set_multicast_loop_v4(false)?;
    s.set_multicast_ttl_v4(1)?;
    s.set_tos_v4(TOS_INTERNETWORK_CONTROL)?;
    // Only the groups joined on this socket, not every group joined on the host.
    s.set_multicast_all_v4(false)?;
    s.set_recv_buffer_size(1 << 20)?;
    s.set_nonblocking(true)?;
    s.join_multicast_v4_n(&ALL_SPF_ROUTERS, &InterfaceIndexOrAddress::Index(ifindex))?;
    Ok(s)
}

impl OspfIo {
    /// No interface open yet; received packets go to `rx`.
    pub fn new(rx: mpsc::Sender<RxPacket>) -> Self {
        OspfIo {
            socks: HashMap::new(),
            rx,
        }
    }

    /// Opens an interface: a socket bound to it, member of AllSPFRouters, with a reader
    /// task feeding `rx`. Reopens if already open.
    pub fn open(&mut self, ifname: &str, ifindex: u32) -> std::io::Result<()> {
        self.socks.remove(ifname);
        // `AsyncFd::new` is deprecated for types that do not own their descriptor; a
        // `socket2::Socket` does (it closes it on drop, after the AsyncFd deregisters), and
        // the replacement (`register`) is `unsafe`, which this crate forbids.
        #[allow(deprecated)]
        let fd = Arc::new(AsyncFd::new(open_socket(ifname, ifindex)?)?);
        let reader = tokio::spawn(read_loop(ifname.to_string(), fd.clone(), self.rx.clone()));
        self.socks.insert(
            ifname.to_string(),
            IfSocket {
                fd,
                ifindex,
                reader,
            },
        );
        Ok(())
    }

    /// Closes an interface.
    pub fn close(&mut self, ifname: &str) {
        self.socks.remove(ifname);
    }

    /// Joins or leaves AllDRouters on an open interface.
    pub fn all_drouters(&mut self, ifname: &str, join: bool) -> std::io::Result<()> {
        let Some(s) = self.socks.get(ifname) else {
            return Ok(());
        };
        let ifc = InterfaceIndexOrAddress::Index(s.ifindex);
        let sock = s.fd.get_ref();
        if join {
            sock.join_multicast_v4_n(&ALL_D_ROUTERS, &ifc)
        } else {
            sock.leave_multicast_v4_n(&ALL_D_ROUTERS, &ifc)
        }
    }

    /// Sends an OSPF packet out of an interface.
    pub fn send(&self, ifname: &str, dst: Ipv4Addr, data: &[u8]) -> std::io::Result<()> {
        let Some(s) = self.socks.get(ifname) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("{ifname} is not open"),
            ));
        };
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        s.fd.get_ref().send_to(data, &to).map(|_| ())
    }

    /// Carries out the I/O outputs of the instance (Send, Membership); others are ignored.
    /// Errors are logged: a lost packet is OSPF's everyday business.
    pub fn apply(&mut self, o: &Output) {
        match o {
            Output::Send { ifname, dst, data } => {
                if let Err(e) = self.send(ifname, *dst, data) {
                    tracing::debug!(%ifname, %dst, "send: {e}");
                }
            }
            Output::Membership {
                ifname,
                ifindex,
                group,
                join,
            } => {
                let r = if *group == ALL_SPF_ROUTERS {
                    if *join {
                        self.open(ifname, *ifindex)
                    } else {
                        self.close(ifname);
                        Ok(())
                    }
                } else {
                    self.all_drouters(ifname, *join)
                };
                if let Err(e) = r {
                    tracing::warn!(%ifname, %group, join, "multicast membership: {e}");
                }
            }
            _ => {}
        }
    }

    /// Interfaces currently open.
    pub fn open_interfaces(&self) -> Vec<String> {
        self.socks.keys().cloned().collect()
    }
}

async fn read_loop(ifname: String, fd: Arc<AsyncFd<Socket>>, tx: mpsc::Sender<RxPacket>) {
    let mut buf = vec![0u8; 65536];
    loop {
        let mut guard = match fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(%ifname, "socket: {e}");
                return;
            }
        };
        let n = match guard.try_io(|inner| inner.get_ref().read(&mut buf)) {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%ifname, "recv: {e}");
                continue;
            }
            Err(_would_block) => continue,
        };
        let Some((src, dst, payload)) = parse_ipv4(&buf[..n]) else {
            continue;
        };
        let pkt = RxPacket {
            ifname: ifname.clone(),
            src,
            dst,
            data: payload.to_vec(),
        };
        if tx.send(pkt).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_is_split_off() {
        let mut b = vec![0x45, 0xc0, 0, 48, 0, 0, 0, 0, 1, 89, 0, 0];
        b.extend_from_slice(&[10, 0, 0, 1, 224, 0, 0, 5]);
        b.extend_from_slice(&[2, 1, 0, 44]);
        let (s, d, p) = parse_ipv4(&b).unwrap();
        assert_eq!(s, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(d, ALL_SPF_ROUTERS);
        assert_eq!(p, &[2, 1, 0, 44]);
        // With options (IHL 6).
        let mut o = b.clone();
        o[0] = 0x46;
        o.splice(20..20, [1, 1, 1, 1]);
        assert_eq!(parse_ipv4(&o).unwrap().2, &[2, 1, 0, 44]);
    }

    #[test]
    fn malformed_headers_are_refused() {
        assert_eq!(parse_ipv4(&[]), None);
        assert_eq!(parse_ipv4(&[0x65; 40]), None);
        assert_eq!(parse_ipv4(&[0x44; 40]), None);
        assert_eq!(parse_ipv4(&[0x4f; 40]), None);
    }
}
