//! rtnetlink plumbing shared by the interface watcher and the kernel FIB backend: one message
//! type covering route-family messages (netlink-packet-route) and nexthop objects
//! ([`crate::nexthop`]), framing of many messages into one buffer, a blocking socket with
//! batched requests (one `sendmsg` per batch, errors matched by sequence number) and dumps.
//!
//! The framing and parsing functions are pure; [`NlSocket`] is the only I/O.

use std::io;
use std::path::{Path, PathBuf};

use netlink_packet_core::{
    Emitable, NetlinkBuffer, NetlinkHeader, NetlinkSerializable, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_NOOP, NLMSG_OVERRUN, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::nexthop::{NexthopMessage, RTM_DELNEXTHOP, RTM_GETNEXTHOP, RTM_NEWNEXTHOP};

/// Netlink header length.
pub const HEADER_LEN: usize = 16;

/// An rtnetlink message body: a route-family message or a nexthop object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtMessage {
    /// Links, addresses, routes (netlink-packet-route).
    Route(RouteNetlinkMessage),
    /// `RTM_NEWNEXTHOP` / `RTM_DELNEXTHOP` / `RTM_GETNEXTHOP` with its body.
    Nexthop(u16, NexthopMessage),
}

impl RtMessage {
    /// The netlink message type.
    pub fn message_type(&self) -> u16 {
        match self {
            RtMessage::Route(m) => m.message_type(),
            RtMessage::Nexthop(t, _) => *t,
        }
    }

    fn body_len(&self) -> usize {
        match self {
            RtMessage::Route(m) => NetlinkSerializable::buffer_len(m),
            RtMessage::Nexthop(_, m) => m.buffer_len(),
        }
    }

    fn emit_body(&self, buf: &mut [u8]) {
        match self {
            RtMessage::Route(m) => m.serialize(buf),
            RtMessage::Nexthop(_, m) => m.emit(buf),
        }
    }

    /// Decodes a message body given its netlink type.
    pub fn decode(message_type: u16, payload: &[u8]) -> Result<Self, String> {
        match message_type {
            RTM_NEWNEXTHOP | RTM_DELNEXTHOP | RTM_GETNEXTHOP => NexthopMessage::parse(payload)
                .map(|m| RtMessage::Nexthop(message_type, m))
                .map_err(|e| e.to_string()),
            t => {
                let mut header = NetlinkHeader::default();
                header.message_type = t;
                <RouteNetlinkMessage as netlink_packet_core::NetlinkDeserializable>::deserialize(
                    &header, payload,
                )
                .map(RtMessage::Route)
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// Appends one framed netlink message (header + body, 4-byte aligned) to `out`.
pub fn frame_into(out: &mut Vec<u8>, msg: &RtMessage, flags: u16, seq: u32) {
    let body = msg.body_len();
    let len = HEADER_LEN + body;
    let start = out.len();
    out.resize(start + align4(len), 0);
    let mut header = NetlinkHeader::default();
    header.length = len as u32;
    header.message_type = msg.message_type();
    header.flags = flags;
    header.sequence_number = seq;
    header.emit(&mut out[start..start + HEADER_LEN]);
    msg.emit_body(&mut out[start + HEADER_LEN..start + len]);
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One message read from a netlink buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// An ack (`code == 0`) or error (`code` = negative errno) for request `seq`.
    Ack { seq: u32, code: i32 },
    /// End of a dump.
    Done { seq: u32 },
    /// A message (dump answer or notification); `interrupted` when the dump was
    /// inconsistent (`NLM_F_DUMP_INTR`) and must be repeated.
    Message {
        seq: u32,
        interrupted: bool,
        msg: RtMessage,
    },
    /// A message this code cannot decode (skipped, counted by the caller).
    Undecodable { seq: u32, reason: String },
}

/// Splits a received buffer into its messages. Never panics on malformed input: the rest of
/// a buffer whose framing is broken is reported as one `Undecodable`.
pub fn parse_buffer(buf: &[u8]) -> Vec<Received> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + HEADER_LEN <= buf.len() {
        let nl = match NetlinkBuffer::new_checked(&buf[off..]) {
            Ok(nl) => nl,
            Err(e) => {
                out.push(Received::Undecodable {
                    seq: 0,
                    reason: e.to_string(),
                });
                break;
            }
        };
        let len = nl.length() as usize;
        if len < HEADER_LEN {
            out.push(Received::Undecodable {
                seq: nl.sequence_number(),
                reason: format!("netlink length {len}"),
            });
            break;
        }
        let seq = nl.sequence_number();
        let payload = &buf[off + HEADER_LEN..off + len];
        match nl.message_type() {
            NLMSG_ERROR => {
                let code = payload
                    .get(..4)
                    .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                match code {
                    Some(code) => out.push(Received::Ack { seq, code }),
                    None => out.push(Received::Undecodable {
                        seq,
                        reason: "short NLMSG_ERROR".into(),
                    }),
                }
            }
            NLMSG_DONE => out.push(Received::Done { seq }),
            NLMSG_NOOP | NLMSG_OVERRUN => {}
            t => match RtMessage::decode(t, payload) {
                Ok(msg) => out.push(Received::Message {
                    seq,
                    interrupted: nl.flags() & NLM_F_DUMP_INTR != 0,
                    msg,
                }),
                Err(reason) => out.push(Received::Undecodable { seq, reason }),
            },
        }
        off += align4(len);
    }
    out
}

/// Errors of netlink requests.
#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("kernel refused the request: {}", errno_text(*.0))]
    Refused(i32),
    #[error("dump kept being interrupted by concurrent changes")]
    DumpInterrupted,
    #[error("cannot enter network namespace {path}: {reason}")]
    Netns { path: PathBuf, reason: String },
}

/// `strerror` for a negative or positive errno.
pub fn errno_text(code: i32) -> String {
    let e = nix::errno::Errno::from_raw(code.abs());
    format!("{} ({})", e.desc(), e)
}

/// Runs `f` on a thread that has entered the network namespace at `netns` (a path such as
/// `/var/run/netns/NAME`), or on the current thread if `None`. A netlink socket created in
/// `f` stays bound to that namespace wherever it is used afterwards.
pub fn in_netns<T: Send + 'static>(
    netns: Option<&Path>,
    f: impl FnOnce() -> Result<T, NlError> + Send + 'static,
) -> Result<T, NlError> {
    let Some(path) = netns else {
        return f();
    };
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).map_err(|e| NlError::Netns {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
            NlError::Netns {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        f()
    })
    .join()
    .map_err(|_| NlError::Io(io::Error::other("netns thread panicked")))?
}

/// A blocking NETLINK_ROUTE socket.
pub struct NlSocket {
    sock: Socket,
    seq: u32,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

/// Receive buffer for one datagram: the kernel caps dump datagrams at 32 KiB.
const RX_LEN: usize = 64 * 1024;

impl NlSocket {
    /// Opens a socket in the current namespace (or `netns`), with extended acks and capped
    /// acks (an error echoes the request header only).
    pub fn open(netns: Option<&Path>) -> Result<Self, NlError> {
        let sock = in_netns(netns, || {
            let mut sock = Socket::new(NETLINK_ROUTE)?;
            sock.bind_auto()?;
            sock.connect(&SocketAddr::new(0, 0))?;
            Ok(sock)
        })?;
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(NlSocket {
            sock,
            seq: 1,
            rx: Vec::with_capacity(RX_LEN),
            tx: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sets the receive buffer, past `rmem_max` (SO_RCVBUFFORCE, needs CAP_NET_ADMIN); falls
    /// back to SO_RCVBUF. Returns the size the kernel reports.
    pub fn set_rcvbuf(&self, bytes: usize) -> usize {
        use nix::sys::socket::{setsockopt, sockopt};
        if setsockopt(&self.sock, sockopt::RcvBufForce, &bytes).is_err() {
            let _ = setsockopt(&self.sock, sockopt::RcvBuf, &bytes);
        }
        self.sock.get_rx_buf_sz().unwrap_or(0)
    }

    /// Makes `recv` return `WouldBlock`/`TimedOut` after `timeout` with nothing to read.
    pub fn set_recv_timeout(&self, timeout: std::time::Duration) -> Result<(), NlError> {
        use nix::sys::socket::{setsockopt, sockopt};
        setsockopt(
            &self.sock,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(timeout.as_secs() as i64, timeout.subsec_micros() as i64),
        )
        .map_err(|e| NlError::Io(e.into()))
    }

    /// Subscribes to a multicast group (`RTNLGRP_*`).
    pub fn join(&self, group: u32) -> Result<(), NlError> {
        Ok(self.sock.add_membership(group)?)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Reads one datagram and parses it.
    pub fn recv(&mut self) -> io::Result<Vec<Received>> {
        self.rx.clear();
        let n = self.sock.recv(&mut self.rx, 0)?;
        if n > self.rx.len() {
            return Err(io::Error::other(format!(
                "netlink datagram of {n} bytes truncated"
            )));
        }
        Ok(parse_buffer(&self.rx))
    }

    /// Dumps (`NLM_F_DUMP`) with the given request, retrying when the kernel reports the dump
    /// was interrupted by concurrent changes.
    pub fn dump(&mut self, request: &RtMessage) -> Result<Vec<RtMessage>, NlError> {
        let mut out = Vec::new();
        self.dump_each(request, |m| out.push(m))?;
        Ok(out)
    }

    /// [`NlSocket::dump`] handing each message to `f` as it is read, so a large dump is
    /// never held whole. A repeated (interrupted) dump hands messages again: `f` must
    /// accept a message twice.
    pub fn dump_each(
        &mut self,
        request: &RtMessage,
        mut f: impl FnMut(RtMessage),
    ) -> Result<(), NlError> {
        for _ in 0..5 {
            let seq = self.next_seq();
            self.tx.clear();
            frame_into(&mut self.tx, request, NLM_F_REQUEST | NLM_F_DUMP, seq);
            self.sock.send(&self.tx, 0)?;
            let mut interrupted = false;
            'recv: loop {
                for r in self.recv()? {
                    match r {
                        Received::Message {
                            seq: s,
                            interrupted: i,
                            msg,
                        } if s == seq => {
                            interrupted |= i;
                            f(msg);
                        }
                        Received::Done { seq: s } if s == seq => break 'recv,
                        Received::Ack { seq: s, code } if s == seq && code != 0 => {
                            return Err(NlError::Refused(code))
                        }
                        Received::Undecodable { seq: s, reason } if s == seq => {
                            tracing::debug!(%reason, "skipping undecodable dump message");
                        }
                        _ => {}
                    }
                }
            }
            if !interrupted {
                return Ok(());
            }
        }
        Err(NlError::DumpInterrupted)
    }

    /// Sends one datagram of `count` framed requests numbered from `first_seq` (the last
    /// asking for an ack) and reads the answers up to that ack. The kernel handles the
    /// whole datagram inside `sendmsg`, so the answers are already queued when it returns.
    /// Returns the failed requests: (index in the datagram, -errno).
    pub fn send_batch(
        &mut self,
        buf: &[u8],
        first_seq: u32,
        count: u32,
    ) -> Result<Vec<(u32, i32)>, NlError> {
        let last_seq = first_seq.wrapping_add(count.saturating_sub(1));
        self.sock.send(buf, 0)?;
        let mut errors = Vec::new();
        loop {
            let mut finished = false;
            for r in self.recv()? {
                if let Received::Ack { seq, code } = r {
                    let idx = seq.wrapping_sub(first_seq);
                    if code != 0 && idx < count {
                        errors.push((idx, code));
                    }
                    if seq == last_seq {
                        finished = true;
                    }
                }
            }
            if finished {
                return Ok(errors);
            }
        }
    }

    /// Sends `requests` packed `per_send` to a `sendmsg`, each with `NLM_F_REQUEST` plus its
    /// flags. Only the last message of each `sendmsg` asks for an ack: the kernel handles
    /// the whole datagram before `sendmsg` returns and reports every failed message with its
    /// sequence number, so one ack marks the end of the datagram's answers. Returns one code
    /// per request: 0 or a negative errno.
    pub fn transact(
        &mut self,
        requests: &[(RtMessage, u16)],
        per_send: usize,
    ) -> Result<Vec<i32>, NlError> {
        let per_send = per_send.max(1);
        let mut codes = vec![0i32; requests.len()];
        for (chunk_no, chunk) in requests.chunks(per_send).enumerate() {
            let base = chunk_no * per_send;
            self.tx.clear();
            let first_seq = self.seq.wrapping_add(1);
            let mut last_seq = first_seq;
            for (i, (msg, flags)) in chunk.iter().enumerate() {
                let seq = self.next_seq();
                last_seq = seq;
                let ack = if i + 1 == chunk.len() { NLM_F_ACK } else { 0 };
                frame_into(&mut self.tx, msg, NLM_F_REQUEST | flags | ack, seq);
            }
            self.sock.send(&self.tx, 0)?;
            loop {
                let mut finished = false;
                for r in self.recv()? {
                    if let Received::Ack { seq, code } = r {
                        let idx = seq.wrapping_sub(first_seq) as usize;
                        if idx < chunk.len() {
                            codes[base + idx] = code;
                        }
                        if seq == last_seq {
                            finished = true;
                        }
                    }
                }
                if finished {
                    break;
                }
            }
        }
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::{RouteAttribute, RouteMessage};

    #[test]
    fn frames_are_aligned_and_parse_back() {
        let mut rm = RouteMessage::default();
        rm.header.destination_prefix_length = 24;
        rm.attributes.push(RouteAttribute::NhId(1_000_000));
        let route = RtMessage::Route(RouteNetlinkMessage::NewRoute(rm));
        let nh = RtMessage::Nexthop(
            RTM_NEWNEXTHOP,
            NexthopMessage {
                family: 2,
                id: Some(9),
                oif: Some(2),
                ..Default::default()
            },
        );
        let mut buf = Vec::new();
        frame_into(&mut buf, &route, NLM_F_REQUEST, 7);
        frame_into(&mut buf, &nh, NLM_F_REQUEST, 8);
        assert_eq!(buf.len() % 4, 0);
        let got = parse_buffer(&buf);
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[0], Received::Message { seq: 7, msg, .. } if *msg == route));
        assert!(matches!(&got[1], Received::Message { seq: 8, msg, .. } if *msg == nh));
    }

    #[test]
    fn errors_and_done_are_reported_with_their_sequence() {
        let mut buf = Vec::new();
        // NLMSG_ERROR, seq 5, code -17 (EEXIST) + echoed header
        let mut err = vec![0u8; 16 + 4 + 16];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[8..12].copy_from_slice(&5u32.to_ne_bytes());
        err[16..20].copy_from_slice(&(-17i32).to_ne_bytes());
        buf.extend_from_slice(&err);
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        done[8..12].copy_from_slice(&6u32.to_ne_bytes());
        buf.extend_from_slice(&done);
        assert_eq!(
            parse_buffer(&buf),
            vec![
                Received::Ack { seq: 5, code: -17 },
                Received::Done { seq: 6 }
            ]
        );
    }

    #[test]
    fn garbage_does_not_panic() {
        assert!(parse_buffer(&[1, 2, 3]).is_empty());
        let mut bad = vec![0u8; 20];
        bad[0..4].copy_from_slice(&4u32.to_ne_bytes());
        assert!(matches!(
            parse_buffer(&bad)[0],
            Received::Undecodable { .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn parse_buffer_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = parse_buffer(&bytes);
        }
    }
}
