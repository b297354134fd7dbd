//! Sockets a routing protocol talks to its neighbours with, bound to one interface.
//!
//! Protocols run inside their router's network namespace and use ordinary kernel sockets;
//! the FEA owns interfaces, not packet I/O. What they all need is the same few lines of
//! `setsockopt`: a socket per interface (`SO_BINDTODEVICE`, so a datagram's interface is
//! the socket it came in on, and sends leave through that interface whatever the routing
//! table says), link-local TTL, and multicast membership on that interface only.
//!
//! - [`udp_v4`]: UDP on a port, one per interface (RIP 520, the tutorial's hello).
//! - [`join_v4`]: multicast membership on one interface (224.0.0.9 for RIP).
//! - [`raw_v4`]: raw IP for a protocol number (OSPF 89, VRRP 112).
//! - [`into_tokio`]: the socket as a `tokio::net::UdpSocket`.
//! - [`UdpPerInterface`]: the set of such sockets a protocol keeps, one per active
//!   interface, with what they receive as one stream of [`Datagram`]s.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use socket2::Socket;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Type};

/// A UDP socket on `port`, bound to interface `ifname`, for link-local protocols:
///
/// - `SO_REUSEADDR`: every interface has its own socket on the same port;
/// - `SO_BINDTODEVICE ifname`: receives only what arrives there, sends only there
///   (multicast included, so no `IP_MULTICAST_IF`);
/// - TTL 1 and multicast TTL 1, no multicast loopback, `IP_MULTICAST_ALL` off (only the
///   groups joined on this socket are delivered to it), broadcast allowed;
/// - non-blocking (ready for [`into_tokio`]).
///
/// Needs `CAP_NET_RAW` for `SO_BINDTODEVICE` (and `CAP_NET_BIND_SERVICE` below 1024).
pub fn udp_v4(ifname: &str, port: u16) -> io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(ifname.as_bytes()))?;
    link_local_v4(&s)?;
    s.set_broadcast(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port).into())?;
    Ok(s)
}

/// Joins multicast `group` on the interface with index `ifindex` (the socket receives the
/// group's datagrams arriving there).
pub fn join_v4(s: &Socket, group: Ipv4Addr, ifindex: u32) -> io::Result<()> {
    s.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
}

/// Leaves multicast `group` on the interface with index `ifindex`.
pub fn leave_v4(s: &Socket, group: Ipv4Addr, ifindex: u32) -> io::Result<()> {
    s.leave_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))
}

/// A raw IPv4 socket for IP protocol `protocol`, bound to interface `ifname`, with the
/// same link-local settings as [`udp_v4`]. Reads return the IP header followed by the
/// payload; writes take the payload only (the kernel builds the header). Needs
/// `CAP_NET_RAW`.
pub fn raw_v4(ifname: &str, protocol: u8) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(protocol))),
    )?;
    s.bind_device(Some(ifname.as_bytes()))?;
    link_local_v4(&s)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

fn link_local_v4(s: &Socket) -> io::Result<()> {
    s.set_ttl_v4(1)?;
    s.set_multicast_ttl_v4(1)?;
    s.set_multicast_loop_v4(false)?;
    s.set_multicast_all_v4(false)?;
    Ok(())
}

/// The socket as a tokio UDP socket (it must be non-blocking, as the ones made here are).
/// Call inside a tokio runtime.
pub fn into_tokio(s: Socket) -> io::Result<tokio::net::UdpSocket> {
    tokio::net::UdpSocket::from_std(s.into())
}

/// A datagram received on one interface's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub ifname: String,
    pub src: SocketAddrV4,
    pub data: Vec<u8>,
}

struct Open {
    /// For sending: a plain non-blocking socket sends at once, where tokio's `try_send_to`
    /// would refuse until the reactor has seen the new socket writable.
    sock: Socket,
    reader: JoinHandle<()>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One [`udp_v4`] socket on a port per interface, joined to the protocol's multicast
/// groups there, each read by a task; [`recv`](Self::recv) yields what any of them got.
/// The event loop calls [`sync`](Self::sync) with the interfaces that should have one.
pub struct UdpPerInterface {
    port: u16,
    groups: Vec<Ipv4Addr>,
    open: BTreeMap<String, Open>,
    tx: mpsc::Sender<Datagram>,
    rx: mpsc::Receiver<Datagram>,
}

impl UdpPerInterface {
    /// No socket yet; each will listen on `port` and join `groups`.
    pub fn new(port: u16, groups: Vec<Ipv4Addr>) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        UdpPerInterface {
            port,
            groups,
            open: BTreeMap::new(),
            tx,
            rx,
        }
    }

    /// Opens a socket for each `(name, ifindex)` that has none and closes the others'.
    /// A socket that cannot be opened is logged and tried again at the next call.
    pub fn sync(&mut self, want: impl IntoIterator<Item = (String, u32)>) {
        let want: BTreeMap<String, u32> = want.into_iter().collect();
        self.open.retain(|name, _| want.contains_key(name));
        for (name, ifindex) in want {
            if self.open.contains_key(&name) {
                continue;
            }
            match self.open_one(&name, ifindex) {
                Ok(o) => {
                    self.open.insert(name, o);
                }
                Err(e) => {
                    tracing::error!(ifname = %name, port = self.port, error = %e, "cannot open socket")
                }
            }
        }
    }

    fn open_one(&self, name: &str, ifindex: u32) -> io::Result<Open> {
        let s = udp_v4(name, self.port)?;
        for g in &self.groups {
            join_v4(&s, *g, ifindex)?;
        }
        let sock = s.try_clone()?;
        let reader = tokio::spawn(read(name.to_string(), into_tokio(s)?, self.tx.clone()));
        Ok(Open { sock, reader })
    }

    /// Interfaces with an open socket.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.open.keys().map(String::as_str)
    }

    /// Sends from `ifname`'s socket; errors are logged (protocols recover by their next
    /// periodic message).
    pub fn send(&self, ifname: &str, dst: SocketAddrV4, data: &[u8]) {
        match self.open.get(ifname) {
            Some(o) => {
                if let Err(e) = o.sock.send_to(data, &SocketAddr::V4(dst).into()) {
                    tracing::debug!(ifname, %dst, error = %e, "send failed");
                }
            }
            None => tracing::debug!(ifname, "send on an interface without a socket"),
        }
    }

    /// The next datagram from any interface (cancel-safe).
    pub async fn recv(&mut self) -> Option<Datagram> {
        self.rx.recv().await
    }
}

async fn read(ifname: String, sock: UdpSocket, tx: mpsc::Sender<Datagram>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, SocketAddr::V4(src))) => {
                let d = Datagram {
                    ifname: ifname.clone(),
                    src,
                    data: buf[..n].to_vec(),
                };
                if tx.send(d).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%ifname, error = %e, "receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sockets need CAP_NET_RAW.
    fn root() -> bool {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().nth(2) == Some("0"))
            })
            .unwrap_or(false)
    }

    #[tokio::test]
    async fn udp_on_loopback_receives_its_own_unicast() {
        if !root() {
            eprintln!("SKIPPED (needs root): udp_on_loopback_receives_its_own_unicast");
            return;
        }
        let s = udp_v4("lo", 0).unwrap();
        assert_eq!(s.ttl_v4().unwrap(), 1);
        assert!(!s.multicast_loop_v4().unwrap());
        let port = s.local_addr().unwrap().as_socket().unwrap().port();
        let u = into_tokio(s).unwrap();
        u.send_to(b"hi", (Ipv4Addr::LOCALHOST, port)).await.unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = u.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(from.ip(), std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[tokio::test]
    async fn a_socket_set_follows_the_wanted_interfaces_and_delivers_datagrams() {
        if !root() {
            eprintln!("SKIPPED (needs root): a_socket_set_follows_the_wanted_interfaces_and_delivers_datagrams");
            return;
        }
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut set = UdpPerInterface::new(port, vec![]);
        set.sync([("lo".to_string(), 1)]);
        assert_eq!(set.names().collect::<Vec<_>>(), ["lo"]);
        set.send("lo", SocketAddrV4::new(Ipv4Addr::LOCALHOST, port), b"hey");
        let d = tokio::time::timeout(std::time::Duration::from_secs(5), set.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((d.ifname.as_str(), d.data.as_slice()), ("lo", &b"hey"[..]));
        set.sync([]);
        assert_eq!(set.names().count(), 0);
    }

    #[test]
    fn raw_socket_for_a_protocol_number() {
        if !root() {
            eprintln!("SKIPPED (needs root): raw_socket_for_a_protocol_number");
            return;
        }
        let s = raw_v4("lo", 89).unwrap();
        assert_eq!(s.r#type().unwrap(), Type::RAW);
        assert_eq!(s.protocol().unwrap(), Some(Protocol::from(89)));
        // Joining a group on loopback's index works (lo has ifindex 1 in every namespace).
        join_v4(&s, Ipv4Addr::new(224, 0, 0, 5), 1).unwrap();
        leave_v4(&s, Ipv4Addr::new(224, 0, 0, 5), 1).unwrap();
    }
}
