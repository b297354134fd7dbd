//! The only socket code of oxr-bgp: TCP listeners, outgoing connections (local
//! address, TTL, TCP MD5), one reader and one writer task per connection, and
//! the timers the instance asks for. Everything is turned into
//! [`crate::instance::Input`]s on one channel.
//!
//! ```text
//!  listener task --accept--> reader task --Received/Closed--+
//!  connect task  --------->  reader task                     +--> mpsc<IoEvent> --> event loop
//!                            writer task <-- WriteCmd <-- Io::apply(Output::Send/Close)
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::instance::{ConnId, Input, Output, TimerKey, ACCEPTED_CONN_BASE};

/// Most bytes handed to the instance in one `Received` (reads are merged up
/// to this so one `handle` call covers many UPDATEs). 128 KiB is ~32k IPv4
/// prefixes of one attribute set: the RIB change list of a batch stays a
/// few MB (1 MiB reads made it ~22 MB at once, left behind as heap holes).
const READ_CHUNK: usize = 128 << 10;
/// First read buffer of a readable socket.
const READ_FIRST: usize = 4096;
/// Received bytes the event loop may have waiting before readers stop
/// reading (see [`Backlog`]).
const MAX_BACKLOG: usize = 512 << 10;
/// Give up an outgoing connection attempt after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the socket tasks report.
#[derive(Debug)]
pub enum IoEvent {
    /// An input for the instance.
    Input(Input),
    /// A connection is up: its writer, then the input announcing it.
    Up(ConnId, mpsc::UnboundedSender<WriteCmd>, Input),
}

/// Commands to a connection's writer task.
#[derive(Debug)]
pub enum WriteCmd {
    /// Write these bytes.
    Data(Vec<u8>),
    /// Set the IP TTL / hop limit.
    Ttl(u8),
    /// Flush, shut down and drop the connection.
    Close,
}

/// Bytes read from the sockets and not yet handled by the event loop.
/// Readers wait while it is over [`MAX_BACKLOG`], so when a peer sends faster
/// than the instance decodes, the kernel's receive buffer fills and TCP flow
/// control slows the peer, instead of the event channel (unbounded, for the
/// other events) buffering a whole table of UPDATEs.
#[derive(Debug, Default)]
struct Backlog {
    bytes: AtomicUsize,
    freed: tokio::sync::Notify,
}

impl Backlog {
    async fn wait(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check: a release in between still wakes us.
            freed.as_mut().enable();
            if self.bytes.load(Ordering::Acquire) < MAX_BACKLOG {
                return;
            }
            freed.await;
        }
    }
}

/// Where the socket tasks report, with the read backlog they share.
#[derive(Debug, Clone)]
struct Events {
    tx: mpsc::UnboundedSender<IoEvent>,
    backlog: Arc<Backlog>,
}

impl Events {
    fn send(&self, ev: IoEvent) -> Result<(), mpsc::error::SendError<IoEvent>> {
        self.tx.send(ev)
    }
}

/// Socket state owned by the event loop.
pub struct Io {
    events: Events,
    writers: HashMap<ConnId, mpsc::UnboundedSender<WriteCmd>>,
    /// Closed by the instance before its connect finished.
    cancelled: HashSet<ConnId>,
    timers: BTreeMap<TimerKey, Instant>,
    listeners: Vec<Arc<TcpListener>>,
    md5_peers: HashSet<IpAddr>,
    start: Instant,
}

impl Io {
    /// Binds the listeners (`addrs`, e.g. `0.0.0.0:179` and `[::]:179`) and
    /// starts accepting; events go to `events`.
    pub async fn start(
        addrs: &[SocketAddr],
        events: mpsc::UnboundedSender<IoEvent>,
    ) -> io::Result<Io> {
        let next_accept = Arc::new(AtomicU64::new(ACCEPTED_CONN_BASE));
        let events = Events {
            tx: events,
            backlog: Arc::default(),
        };
        let mut listeners = Vec::new();
        for a in addrs {
            let sock = if a.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            sock.set_reuseaddr(true)?;
            if a.is_ipv6() {
                // Separate IPv4 and IPv6 listeners may share the port.
                SockRef::from(&sock).set_only_v6(true)?;
            }
            sock.bind(*a)?;
            let l = Arc::new(sock.listen(64)?);
            tracing::info!(listen = %a, "BGP listening");
            listeners.push(l.clone());
            tokio::spawn(accept_loop(l, events.clone(), next_accept.clone()));
        }
        Ok(Io {
            events,
            writers: HashMap::new(),
            cancelled: HashSet::new(),
            timers: BTreeMap::new(),
            listeners,
            md5_peers: HashSet::new(),
            start: Instant::now(),
        })
    }

    /// The event loop handled `bytes` of received data (the sum of the
    /// `Received` inputs it took): readers waiting on the backlog resume.
    pub fn handled(&self, bytes: usize) {
        if bytes > 0 {
            self.events.backlog.bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.events.backlog.freed.notify_waiters();
        }
    }

    /// Milliseconds since start (the instance's clock).
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.values().min().copied()
    }

    /// Removes and returns the timers due now.
    pub fn due_timers(&mut self) -> Vec<TimerKey> {
        let now = Instant::now();
        let due: Vec<TimerKey> = self
            .timers
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in &due {
            self.timers.remove(k);
        }
        due
    }

    /// A connection reported up: keep its writer (or drop it if the instance
    /// already gave up on it) and return the input to deliver.
    pub fn on_up(
        &mut self,
        conn: ConnId,
        writer: mpsc::UnboundedSender<WriteCmd>,
        input: Input,
    ) -> Option<Input> {
        if self.cancelled.remove(&conn) {
            let _ = writer.send(WriteCmd::Close);
            return None;
        }
        self.writers.insert(conn, writer);
        Some(input)
    }

    /// Carries out the socket and timer outputs; returns the others.
    pub fn apply(&mut self, outputs: Vec<Output>) -> Vec<Output> {
        let mut rest = Vec::new();
        for o in outputs {
            match o {
                Output::Connect {
                    conn,
                    peer,
                    local,
                    ttl,
                    md5,
                } => {
                    tokio::spawn(connect(conn, peer, local, ttl, md5, self.events.clone()));
                }
                Output::Close { conn } => match self.writers.remove(&conn) {
                    Some(w) => {
                        let _ = w.send(WriteCmd::Close);
                    }
                    None => {
                        self.cancelled.insert(conn);
                    }
                },
                Output::Send { conn, bytes } => {
                    if let Some(w) = self.writers.get(&conn) {
                        let _ = w.send(WriteCmd::Data(bytes));
                    }
                }
                Output::AcceptedTtl { conn, ttl } => {
                    if let Some(w) = self.writers.get(&conn) {
                        let _ = w.send(WriteCmd::Ttl(ttl));
                    }
                }
                Output::SetTimer { key, after_ms } => {
                    self.timers
                        .insert(key, Instant::now() + Duration::from_millis(after_ms));
                }
                Output::CancelTimer { key } => {
                    self.timers.remove(&key);
                }
                Output::ListenerMd5(keys) => self.set_listener_keys(&keys),
                other => rest.push(other),
            }
        }
        rest
    }

    fn set_listener_keys(&mut self, keys: &[(IpAddr, String)]) {
        let now: HashSet<IpAddr> = keys.iter().map(|(a, _)| *a).collect();
        for l in &self.listeners {
            let v6 = l.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
            for (peer, key) in keys {
                if peer.is_ipv6() != v6 {
                    continue;
                }
                if let Err(e) = md5::set_key(l.as_fd(), *peer, key.as_bytes()) {
                    tracing::warn!(peer = %peer, error = %e, "TCP MD5 key on listener failed");
                }
            }
            // An empty key removes a peer's entry.
            for gone in self.md5_peers.difference(&now) {
                if gone.is_ipv6() == v6 {
                    let _ = md5::set_key(l.as_fd(), *gone, &[]);
                }
            }
        }
        self.md5_peers = now;
    }
}

async fn accept_loop(l: Arc<TcpListener>, events: Events, next: Arc<AtomicU64>) {
    loop {
        match l.accept().await {
            Ok((stream, peer)) => {
                let Ok(local) = stream.local_addr() else {
                    continue;
                };
                let conn = next.fetch_add(1, Ordering::Relaxed) + 1;
                let _ = stream.set_nodelay(true);
                let input = Input::Accepted {
                    conn,
                    peer: unmap(peer),
                    local: unmap(local),
                };
                if !spawn_conn(conn, stream, &events, input) {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses (from a dual-stack socket) as IPv4.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        a => a,
    }
}

async fn connect(
    conn: ConnId,
    peer: SocketAddr,
    local: Option<IpAddr>,
    ttl: u8,
    md5_key: Option<String>,
    events: Events,
) {
    let r = async {
        let sock = if peer.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        set_ttl(SockRef::from(&sock), peer.is_ipv6(), ttl)?;
        if let Some(k) = &md5_key {
            md5::set_key(sock.as_fd(), peer.ip(), k.as_bytes())?;
        }
        if let Some(l) = local {
            sock.bind(SocketAddr::new(l, 0))?;
        }
        let s = tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(peer))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let _ = s.set_nodelay(true);
        io::Result::Ok(s)
    }
    .await;
    match r {
        Ok(stream) => {
            let local = stream.local_addr().map(unmap).unwrap_or(peer);
            spawn_conn(conn, stream, &events, Input::Connected { conn, local });
        }
        Err(e) => {
            tracing::debug!(peer = %peer, error = %e, "connect failed");
            let _ = events.send(IoEvent::Input(Input::Closed { conn }));
        }
    }
}

fn set_ttl(s: SockRef<'_>, v6: bool, ttl: u8) -> io::Result<()> {
    if v6 {
        s.set_unicast_hops_v6(u32::from(ttl))
    } else {
        s.set_ttl_v4(u32::from(ttl))
    }
}

/// Reports the connection up (`up`), then starts its reader and writer: the
/// channel is FIFO, so the instance hears of the connection before its bytes.
/// Returns false when the event loop is gone.
fn spawn_conn(conn: ConnId, stream: TcpStream, events: &Events, up: Input) -> bool {
    let (r, w) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    if events.send(IoEvent::Up(conn, tx, up)).is_err() {
        return false;
    }
    let reader = tokio::spawn(read_loop(conn, r, events.clone()));
    tokio::spawn(write_loop(w, rx, reader));
    true
}

/// Reads into a buffer made only once the socket is readable, so an idle
/// session holds no read buffer (200 sessions would otherwise pin 200 x 64 KiB).
/// The buffer starts small (keepalives) and doubles while more is readable,
/// up to [`READ_CHUNK`].
async fn read_loop(conn: ConnId, r: OwnedReadHalf, events: Events) {
    loop {
        events.backlog.wait().await;
        if r.readable().await.is_err() {
            break;
        }
        let mut data: Vec<u8> = Vec::with_capacity(READ_FIRST);
        let mut eof = false;
        // Merge what is already readable: fewer, larger batches.
        while data.len() < READ_CHUNK {
            if data.len() == data.capacity() {
                data.reserve(data.capacity().min(READ_CHUNK - data.len()));
            }
            match r.try_read_buf(&mut data) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if !data.is_empty() {
            events.backlog.bytes.fetch_add(data.len(), Ordering::AcqRel);
            let ev = IoEvent::Input(Input::Received { conn, bytes: data });
            if events.send(ev).is_err() {
                return;
            }
        }
        if eof {
            break;
        }
    }
    let _ = events.send(IoEvent::Input(Input::Closed { conn }));
}

async fn write_loop(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<WriteCmd>,
    reader: tokio::task::JoinHandle<()>,
) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            WriteCmd::Data(b) => {
                if w.write_all(&b).await.is_err() {
                    break;
                }
            }
            WriteCmd::Ttl(t) => {
                let v6 = w.local_addr().map(|a| a.is_ipv6()).unwrap_or(false);
                let _ = set_ttl(SockRef::from(w.as_ref()), v6, t);
            }
            WriteCmd::Close => break,
        }
    }
    let _ = w.shutdown().await;
    reader.abort();
}

/// TCP MD5 signatures (RFC 2385) through Linux's `TCP_MD5SIG` socket option.
mod md5 {
    use super::*;

    const TCP_MD5SIG_MAXKEYLEN: usize = 80;

    /// `struct tcp_md5sig` from `<linux/tcp.h>` (libc does not define it).
    #[repr(C)]
    struct TcpMd5Sig {
        /// `struct __kernel_sockaddr_storage`: 128 octets, 8-aligned.
        addr: SockaddrStorage,
        flags: u8,
        prefixlen: u8,
        keylen: u16,
        ifindex: i32,
        key: [u8; TCP_MD5SIG_MAXKEYLEN],
    }

    #[repr(C, align(8))]
    struct SockaddrStorage([u8; 128]);

    /// Builds the option value without unsafe code: the sockaddr is written
    /// field by field in its C layout (family in host order, port and
    /// address in network order).
    fn sig(peer: IpAddr, key: &[u8]) -> io::Result<TcpMd5Sig> {
        if key.len() > TCP_MD5SIG_MAXKEYLEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "MD5 key over 80 octets",
            ));
        }
        let mut addr = [0u8; 128];
        match peer {
            IpAddr::V4(a) => {
                addr[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
                addr[4..8].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                addr[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
                addr[8..24].copy_from_slice(&a.octets());
            }
        }
        let mut k = [0u8; TCP_MD5SIG_MAXKEYLEN];
        k[..key.len()].copy_from_slice(key);
        Ok(TcpMd5Sig {
            addr: SockaddrStorage(addr),
            flags: 0,
            prefixlen: 0,
            keylen: key.len() as u16,
            ifindex: 0,
            key: k,
        })
    }

    /// Sets (or with an empty key, removes) the MD5 key for `peer` on a socket.
    pub(super) fn set_key(fd: BorrowedFd<'_>, peer: IpAddr, key: &[u8]) -> io::Result<()> {
        let v = sig(peer, key)?;
        #[allow(unsafe_code)]
        // SAFETY: `v` is a live, fully initialised #[repr(C)] value whose layout
        // matches the kernel's `struct tcp_md5sig`, and the length passed is its
        // exact size; the kernel only reads from the pointer during the call.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_MD5SIG,
                (&v as *const TcpMd5Sig).cast::<libc::c_void>(),
                std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn option_value_has_the_kernel_layout() {
            assert_eq!(std::mem::size_of::<TcpMd5Sig>(), 216);
            let v = sig("192.0.2.1".parse().unwrap(), b"secret").unwrap();
            assert_eq!(v.keylen, 6);
            assert_eq!(&v.addr.0[4..8], &[192, 0, 2, 1]);
            assert!(sig("192.0.2.1".parse().unwrap(), &[0; 81]).is_err());
        }

        #[tokio::test]
        async fn kernel_accepts_the_option_on_a_tcp_socket() {
            let s = TcpSocket::new_v4().unwrap();
            // Without CONFIG_TCP_MD5SIG the kernel says ENOPROTOOPT; anything
            // else (EINVAL, EFAULT) would mean a wrong layout.
            match set_key(s.as_fd(), "192.0.2.1".parse().unwrap(), b"k") {
                Ok(()) => {}
                Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT), "{e}"),
            }
        }
    }
}
