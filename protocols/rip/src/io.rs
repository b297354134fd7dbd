//! Packet I/O: one UDP socket on port 520 per RIP interface, bound to its device and member
//! of 224.0.0.9 there. The only socket code of the crate: the instance says what to send
//! ([`crate::instance::Output::Send`]); received datagrams come back as [`RxPacket`]s.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::packet::{RIP_GROUP, RIP_PORT};

/// A received RIP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxPacket {
    pub ifname: String,
    pub src: SocketAddrV4,
    pub data: Vec<u8>,
}

struct IfSocket {
    sock: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

impl Drop for IfSocket {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The sockets of every open interface.
pub struct RipIo {
    socks: HashMap<String, IfSocket>,
    rx: mpsc::Sender<RxPacket>,
}

fn open_socket(ifname: &str, ifindex: u32) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Several sockets share port 520, one per device.
    s.set_reuse_address(true)?;
    s.bind_device(Some(ifname.as_bytes()))?;
    s.set_multicast_loop_v4(false)?;
    s.set_multicast_ttl_v4(1)?;
    s.set_ttl_v4(1)?;
    s.set_multicast_all_v4(false)?;
    // Multicast leaves through the bound device; no IP_MULTICAST_IF needed.
    s.set_nonblocking(true)?;
    s.bind(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, RIP_PORT).into())?;
    s.join_multicast_v4_n(&RIP_GROUP, &InterfaceIndexOrAddress::Index(ifindex))?;
    Ok(s)
}

impl RipIo {
    /// No interface open yet; received packets go to `rx`.
    pub fn new(rx: mpsc::Sender<RxPacket>) -> Self {
        RipIo {
            socks: HashMap::new(),
            rx,
        }
    }

    /// Is `ifname` open?
    pub fn is_open(&self, ifname: &str) -> bool {
        self.socks.contains_key(ifname)
    }

    /// Opens (or reopens) the socket of an interface, with a reader task.
    pub fn open(&mut self, ifname: &str, ifindex: u32) -> std::io::Result<()> {
        self.socks.remove(ifname);
        let sock = Arc::new(UdpSocket::from_std(open_socket(ifname, ifindex)?.into())?);
        let reader = tokio::spawn(read_loop(ifname.to_string(), sock.clone(), self.rx.clone()));
        self.socks
            .insert(ifname.to_string(), IfSocket { sock, reader });
        Ok(())
    }

    /// Closes the socket of an interface.
    pub fn close(&mut self, ifname: &str) {
        self.socks.remove(ifname);
    }

    /// Names of the open interfaces.
    pub fn open_names(&self) -> Vec<String> {
        self.socks.keys().cloned().collect()
    }

    /// Sends a datagram; errors are logged (RIP recovers by its next update).
    pub fn send(&self, ifname: &str, dst: SocketAddrV4, data: &[u8]) {
        match self.socks.get(ifname) {
            Some(s) => {
                if let Err(e) = s.sock.try_send_to(data, dst.into()) {
                    tracing::debug!(ifname, %dst, error = %e, "rip send failed");
                }
            }
            None => tracing::debug!(ifname, "rip send on closed interface"),
        }
    }
}

async fn read_loop(ifname: String, sock: Arc<UdpSocket>, tx: mpsc::Sender<RxPacket>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, SocketAddr::V4(src))) => {
                let p = RxPacket {
                    ifname: ifname.clone(),
                    src,
                    data: buf[..n].to_vec(),
                };
                if tx.send(p).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(%ifname, error = %e, "rip receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
