//! Interfaces, addresses and link state, learned from netlink.
//!
//! ```text
//!   subscription socket (RTNLGRP_LINK, IPV4_IFADDR, IPV6_IFADDR; 8 MiB SO_RCVBUFFORCE)
//!        |  recv on a dedicated thread
//!        v
//!   InterfaceTable::apply(msg) -> Change      (pure: message -> state change)
//!        |                    \  ENOBUFS (kernel dropped notifications): overruns += 1,
//!        |                     \ full re-dump on the dump socket, published with full_dump
//!        v
//!   broadcast<InterfaceUpdate> ---> WatchInterfaces subscribers (snapshot first, then changes)
//! ```
//!
//! The subscription is opened before the first dump, so no change between the two is lost;
//! applying a notification the dump already reflects changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::netlink::{NlError, NlSocket, RtMessage};

/// `RTNLGRP_LINK`.
pub const RTNLGRP_LINK: u32 = 1;
/// `RTNLGRP_IPV4_IFADDR`.
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
/// `RTNLGRP_IPV6_IFADDR`.
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;

/// Receive buffer of the notification socket: large enough to absorb bursts (thousands of
/// link or address changes) between two reads.
pub const NOTIFY_RCVBUF: usize = 8 << 20;

/// One address on an interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct IfAddress {
    /// Local address with the subnet's prefix length (host bits kept).
    pub prefix: IpNet,
    /// Peer address on point-to-point links.
    pub peer: Option<IpAddr>,
}

/// An interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Interface {
    pub ifindex: u32,
    pub name: String,
    pub admin_up: bool,
    pub oper_up: bool,
    pub mtu: u32,
    #[serde(serialize_with = "ser_mac")]
    pub mac: Vec<u8>,
    pub addresses: BTreeSet<IfAddress>,
    pub loopback: bool,
}

fn ser_mac<S: serde::Serializer>(mac: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_mac(mac))
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Interface {
    /// The wire form.
    pub fn to_proto(&self) -> oxr_proto::fea::Interface {
        oxr_proto::fea::Interface {
            ifindex: self.ifindex,
            name: self.name.clone(),
            admin_up: self.admin_up,
            oper_up: self.oper_up,
            mtu: self.mtu,
            mac: self.mac.clone().into(),
            addresses: self
                .addresses
                .iter()
                .map(|a| oxr_proto::fea::InterfaceAddress {
                    prefix: Some(oxr_proto::types::Prefix {
                        addr: oxr_proto::convert::addr_octets(a.prefix.addr()),
                        len: u32::from(a.prefix.prefix_len()),
                    }),
                    peer: a.peer.map(Into::into),
                })
                .collect(),
            loopback: self.loopback,
        }
    }
}

/// What one netlink message did to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing (not an interface message, or the state already matched).
    None,
    /// The interface with this index is new or changed.
    Changed(u32),
    /// The interface with this index is gone.
    Removed(u32),
}

/// Every interface by ifindex.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceTable {
    pub interfaces: BTreeMap<u32, Interface>,
}

impl InterfaceTable {
    /// Applies one link or address message. Pure: the whole parsing logic of the watcher.
    pub fn apply(&mut self, msg: &RouteNetlinkMessage) -> Change {
        match msg {
            RouteNetlinkMessage::NewLink(m) => {
                let idx = m.header.index;
                let mut new = link_from_message(m);
                let old = self.interfaces.get(&idx);
                if let Some(old) = old {
                    new.addresses = old.addresses.clone();
                    // A NEWLINK without IFLA_IFNAME (rare partial update) keeps the name.
                    if new.name.is_empty() {
                        new.name = old.name.clone();
                    }
                    if new.mac.is_empty() {
                        new.mac = old.mac.clone();
                    }
                    if *old == new {
                        return Change::None;
                    }
                }
                self.interfaces.insert(idx, new);
                Change::Changed(idx)
            }
            RouteNetlinkMessage::DelLink(m) => match self.interfaces.remove(&m.header.index) {
                Some(_) => Change::Removed(m.header.index),
                None => Change::None,
            },
            RouteNetlinkMessage::NewAddress(m) => {
                let Some(addr) = address_from_message(m) else {
                    return Change::None;
                };
                let idx = m.header.index;
                let entry = self.interfaces.entry(idx).or_insert_with(|| Interface {
                    ifindex: idx,
                    ..Default::default()
                });
                if entry.addresses.insert(addr) {
                    Change::Changed(idx)
                } else {
                    Change::None
                }
            }
            RouteNetlinkMessage::DelAddress(m) => {
                let Some(addr) = address_from_message(m) else {
                    return Change::None;
                };
                let idx = m.header.index;
                match self.interfaces.get_mut(&idx) {
                    Some(i) => {
                        if i.addresses.remove(&addr) {
                            Change::Changed(idx)
                        } else {
                            Change::None
                        }
                    }
                    None => Change::None,
                }
            }
            _ => Change::None,
        }
    }

    /// The interface called `name`.
    pub fn by_name(&self, name: &str) -> Option<&Interface> {
        self.interfaces.values().find(|i| i.name == name)
    }
}

/// Interface state from an `RTM_NEWLINK` (addresses come from address messages).
pub fn link_from_message(m: &LinkMessage) -> Interface {
    let mut i = Interface {
        ifindex: m.header.index,
        admin_up: m.header.flags.contains(LinkFlags::Up),
        // IFF_RUNNING is the kernel's operational "up" (oper state UP or UNKNOWN, which is
        // what loopback and many virtual links report).
        oper_up: m.header.flags.contains(LinkFlags::Running),
        loopback: m.header.flags.contains(LinkFlags::Loopback),
        ..Default::default()
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => i.name = n.clone(),
            LinkAttribute::Mtu(v) => i.mtu = *v,
            LinkAttribute::Address(mac) => i.mac = mac.clone(),
            _ => {}
        }
    }
    i
}

/// The address an `RTM_NEWADDR`/`RTM_DELADDR` is about. IPv4 carries the local address in
/// IFA_LOCAL and the peer (point-to-point) or the same address in IFA_ADDRESS; IPv6 carries
/// the local address in IFA_ADDRESS unless a peer is configured.
pub fn address_from_message(m: &AddressMessage) -> Option<IfAddress> {
    let mut local = None;
    let mut address = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    let (addr, peer) = match (local, address) {
        (Some(l), Some(a)) if l != a => (l, Some(a)),
        (Some(l), _) => (l, None),
        (None, Some(a)) => (a, None),
        (None, None) => return None,
    };
    let prefix = IpNet::new(addr, m.header.prefix_len).ok()?;
    Some(IfAddress { prefix, peer })
}

/// Dumps every link and address into a fresh table.
pub fn dump_table(sock: &mut NlSocket) -> Result<InterfaceTable, NlError> {
    let mut t = InterfaceTable::default();
    let links = sock.dump(&RtMessage::Route(RouteNetlinkMessage::GetLink(
        LinkMessage::default(),
    )))?;
    let addrs = sock.dump(&RtMessage::Route(RouteNetlinkMessage::GetAddress(
        AddressMessage::default(),
    )))?;
    for m in links.iter().chain(addrs.iter()) {
        if let RtMessage::Route(m) = m {
            t.apply(m);
        }
    }
    Ok(t)
}

/// A change published to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub changed: Vec<Interface>,
    pub removed: Vec<u32>,
    /// The complete set (after an overrun): interfaces absent from it are gone.
    pub full_dump: bool,
}

impl Update {
    /// The wire form.
    pub fn to_proto(&self) -> oxr_proto::fea::InterfaceUpdate {
        oxr_proto::fea::InterfaceUpdate {
            changed: self.changed.iter().map(Interface::to_proto).collect(),
            removed_ifindex: self.removed.clone(),
            full_dump: self.full_dump,
        }
    }
}

struct Shared {
    table: Mutex<InterfaceTable>,
    tx: broadcast::Sender<Arc<Update>>,
    overruns: AtomicU64,
    updates: AtomicU64,
    stop: AtomicBool,
    netns: Option<PathBuf>,
    dump_sock: Mutex<NlSocket>,
}

/// Keeps the interface table current from netlink; stops its thread when dropped.
pub struct InterfaceWatcher {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InterfaceWatcher {
    /// Subscribes, dumps, and starts following changes, in the current network namespace or
    /// in `netns` (a path like `/var/run/netns/NAME`).
    pub fn start(netns: Option<&Path>) -> Result<Self, NlError> {
        let sub = NlSocket::open(netns)?;
        let got = sub.set_rcvbuf(NOTIFY_RCVBUF);
        tracing::debug!(rcvbuf = got, "interface notification socket");
        for g in [RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR] {
            sub.join(g)?;
        }
        // The thread wakes up this often to notice it should stop.
        sub.set_recv_timeout(Duration::from_millis(250))?;
        let mut dump_sock = NlSocket::open(netns)?;
        let table = dump_table(&mut dump_sock)?;
        let (tx, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            table: Mutex::new(table),
            tx,
            overruns: AtomicU64::new(0),
            updates: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            netns: netns.map(Path::to_path_buf),
            dump_sock: Mutex::new(dump_sock),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fea-interfaces".into())
            .spawn(move || watch_loop(&s, sub))
            .map_err(NlError::Io)?;
        Ok(InterfaceWatcher {
            shared,
            thread: Some(thread),
        })
    }

    /// The current table.
    pub fn snapshot(&self) -> InterfaceTable {
        self.shared
            .table
            .lock()
            .expect("interface table lock")
            .clone()
    }

    /// The current table and a receiver of every change after it (taken atomically).
    pub fn subscribe(&self) -> (InterfaceTable, broadcast::Receiver<Arc<Update>>) {
        let t = self.shared.table.lock().expect("interface table lock");
        (t.clone(), self.shared.tx.subscribe())
    }

    /// ifindex of the interface called `name`.
    pub fn ifindex(&self, name: &str) -> Option<u32> {
        let t = self.shared.table.lock().expect("interface table lock");
        t.by_name(name).map(|i| i.ifindex)
    }

    /// Times the kernel reported lost notifications (each followed by a re-dump).
    pub fn overruns(&self) -> u64 {
        self.shared.overruns.load(Ordering::Relaxed)
    }

    /// Updates published so far.
    pub fn updates(&self) -> u64 {
        self.shared.updates.load(Ordering::Relaxed)
    }

    /// The network namespace this watcher follows, if not the current one.
    pub fn netns(&self) -> Option<&Path> {
        self.shared.netns.as_deref()
    }

    /// Re-reads everything from the kernel, replaces the table and publishes it as a full
    /// dump. What the watcher does after an overrun; public so tests can drive that path.
    pub fn redump(&self) -> Result<(), NlError> {
        redump(&self.shared)
    }

    /// A netlink request socket in the watcher's namespace (for configuring interfaces).
    pub fn with_socket<T>(&self, f: impl FnOnce(&mut NlSocket) -> T) -> T {
        let mut s = self.shared.dump_sock.lock().expect("dump socket lock");
        f(&mut s)
    }
}

impl Drop for InterfaceWatcher {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn redump(shared: &Shared) -> Result<(), NlError> {
    let table = {
        let mut s = shared.dump_sock.lock().expect("dump socket lock");
        dump_table(&mut s)?
    };
    let mut t = shared.table.lock().expect("interface table lock");
    let update = Update {
        changed: table.interfaces.values().cloned().collect(),
        removed: Vec::new(),
        full_dump: true,
    };
    *t = table;
    shared.updates.fetch_add(1, Ordering::Relaxed);
    let _ = shared.tx.send(Arc::new(update));
    Ok(())
}

fn watch_loop(shared: &Shared, mut sub: NlSocket) {
    while !shared.stop.load(Ordering::Relaxed) {
        match sub.recv() {
            Ok(msgs) => {
                let mut t = shared.table.lock().expect("interface table lock");
                let mut changed = BTreeSet::new();
                let mut removed = BTreeSet::new();
                for r in msgs {
                    if let crate::netlink::Received::Message {
                        msg: RtMessage::Route(m),
                        ..
                    } = r
                    {
                        match t.apply(&m) {
                            Change::Changed(i) => {
                                removed.remove(&i);
                                changed.insert(i);
                            }
                            Change::Removed(i) => {
                                changed.remove(&i);
                                removed.insert(i);
                            }
                            Change::None => {}
                        }
                    }
                }
                if changed.is_empty() && removed.is_empty() {
                    continue;
                }
                let update = Update {
                    changed: changed
                        .iter()
                        .filter_map(|i| t.interfaces.get(i).cloned())
                        .collect(),
                    removed: removed.into_iter().collect(),
                    full_dump: false,
                };
                shared.updates.fetch_add(1, Ordering::Relaxed);
                let _ = shared.tx.send(Arc::new(update));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                shared.overruns.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("interface notifications overran the socket buffer: re-dumping");
                if let Err(e) = redump(shared) {
                    tracing::error!(error = %e, "interface re-dump failed");
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                tracing::error!(error = %e, "interface notification socket");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::address::AddressHeader;
    use netlink_packet_route::AddressFamily;

    fn link(idx: u32, name: &str, flags: LinkFlags, mtu: u32) -> RouteNetlinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = idx;
        m.header.flags = flags;
        m.attributes.push(LinkAttribute::IfName(name.into()));
        m.attributes.push(LinkAttribute::Mtu(mtu));
        m.attributes
            .push(LinkAttribute::Address(vec![2, 0, 0, 0, 0, idx as u8]));
        RouteNetlinkMessage::NewLink(m)
    }

    fn addr(idx: u32, attrs: Vec<AddressAttribute>, len: u8, v6: bool) -> AddressMessage {
        let mut m = AddressMessage::default();
        m.header = AddressHeader {
            family: if v6 {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            },
            prefix_len: len,
            index: idx,
            ..Default::default()
        };
        m.attributes = attrs;
        m
    }

    #[test]
    fn new_link_creates_and_identical_repeat_is_no_change() {
        let mut t = InterfaceTable::default();
        let msg = link(3, "veth0", LinkFlags::Up | LinkFlags::Running, 1500);
        assert_eq!(t.apply(&msg), Change::Changed(3));
        let i = &t.interfaces[&3];
        assert_eq!(i.name, "veth0");
        assert!(i.admin_up && i.oper_up && !i.loopback);
        assert_eq!(i.mtu, 1500);
        assert_eq!(format_mac(&i.mac), "02:00:00:00:00:03");
        assert_eq!(t.apply(&msg), Change::None);
    }

    #[test]
    fn link_state_change_keeps_addresses() {
        let mut t = InterfaceTable::default();
        t.apply(&link(3, "veth0", LinkFlags::empty(), 1500));
        let a = addr(
            3,
            vec![
                AddressAttribute::Address("10.0.0.1".parse().unwrap()),
                AddressAttribute::Local("10.0.0.1".parse().unwrap()),
            ],
            16,
            false,
        );
        assert_eq!(
            t.apply(&RouteNetlinkMessage::NewAddress(a.clone())),
            Change::Changed(3)
        );
        assert_eq!(
            t.apply(&link(3, "veth0", LinkFlags::Up, 9000)),
            Change::Changed(3)
        );
        let i = &t.interfaces[&3];
        assert!(i.admin_up && !i.oper_up);
        assert_eq!(i.mtu, 9000);
        assert_eq!(
            i.addresses.iter().next().unwrap().prefix,
            "10.0.0.1/16".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            t.apply(&RouteNetlinkMessage::DelAddress(a.clone())),
            Change::Changed(3)
        );
        assert!(t.interfaces[&3].addresses.is_empty());
        assert_eq!(t.apply(&RouteNetlinkMessage::DelAddress(a)), Change::None);
    }

    #[test]
    fn ipv6_and_point_to_point_addresses() {
        let mut t = InterfaceTable::default();
        t.apply(&link(4, "tun0", LinkFlags::Up, 1400));
        let v6 = addr(
            4,
            vec![AddressAttribute::Address("2001:db8::1".parse().unwrap())],
            64,
            true,
        );
        t.apply(&RouteNetlinkMessage::NewAddress(v6));
        let ptp = addr(
            4,
            vec![
                AddressAttribute::Local("192.0.2.1".parse().unwrap()),
                AddressAttribute::Address("192.0.2.2".parse().unwrap()),
            ],
            32,
            false,
        );
        t.apply(&RouteNetlinkMessage::NewAddress(ptp));
        let addrs: Vec<_> = t.interfaces[&4].addresses.iter().cloned().collect();
        assert!(addrs.contains(&IfAddress {
            prefix: "2001:db8::1/64".parse().unwrap(),
            peer: None
        }));
        assert!(addrs.contains(&IfAddress {
            prefix: "192.0.2.1/32".parse().unwrap(),
            peer: Some("192.0.2.2".parse().unwrap())
        }));
    }

    #[test]
    fn del_link_removes_and_unknown_is_no_change() {
        let mut t = InterfaceTable::default();
        t.apply(&link(5, "lo", LinkFlags::Up | LinkFlags::Loopback, 65536));
        assert!(t.interfaces[&5].loopback);
        let mut m = LinkMessage::default();
        m.header.index = 5;
        assert_eq!(
            t.apply(&RouteNetlinkMessage::DelLink(m.clone())),
            Change::Removed(5)
        );
        assert_eq!(t.apply(&RouteNetlinkMessage::DelLink(m)), Change::None);
    }

    #[test]
    fn address_without_address_attribute_is_ignored() {
        let mut t = InterfaceTable::default();
        let a = addr(9, vec![], 24, false);
        assert_eq!(t.apply(&RouteNetlinkMessage::NewAddress(a)), Change::None);
    }

    #[test]
    fn proto_form_carries_everything() {
        let mut t = InterfaceTable::default();
        t.apply(&link(3, "veth0", LinkFlags::Up, 1500));
        let p = t.interfaces[&3].to_proto();
        assert_eq!(p.ifindex, 3);
        assert_eq!(p.name, "veth0");
        assert_eq!(p.mac.len(), 6);
    }
}
