#!/usr/bin/env python3
"""Kernel route-insert cost experiments (issue 3, oxr-fea). Pre-frames every RTM_NEWROUTE, then times
only the sendmsg/ack loop, in a throwaway namespace that is always deleted.

usage: nlexp.py [--order file|shuffle|lenasc|lendesc|rev|bitrev] [--threads4 N] [--batch N]
                [--flags replace|excl] [--gw] [--table] [--limit N] [--v6] [--shard hash|range]
"""
import argparse, gzip, ipaddress, os, random, resource, socket, struct, subprocess, threading, time

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_REPLACE = 1, 4, 0x200, 0x400, 0x100
RTM_NEWROUTE = 24

ap = argparse.ArgumentParser()
ap.add_argument("--order", default="file")
ap.add_argument("--threads4", type=int, default=1)
ap.add_argument("--threads6", type=int, default=1)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--flags", default="replace")
ap.add_argument("--gw", action="store_true")
ap.add_argument("--table", action="store_true")
ap.add_argument("--limit", type=int, default=0)
ap.add_argument("--v6", action="store_true", help="include IPv6 (parallel thread)")
ap.add_argument("--no4", action="store_true")
ap.add_argument("--shard", default="range")
ap.add_argument("--sndbuf", type=int, default=0)
ap.add_argument("--seed", type=int, default=1)
a = ap.parse_args()

import pickle
CACHE = "/tmp/feaexp/table.pickle"
if os.path.exists(CACHE):
    v4, v6 = pickle.load(open(CACHE, "rb"))
else:
    v4, v6 = [], []
    seen = set()
    with gzip.open("/work/shared/data/full-table-prefixes.txt.gz", "rt") as f:
        for line in f:
            line = line.strip()
            if "/" not in line:
                continue
            ad, ln = line.split("/")
            ln = int(ln)
            fam = socket.AF_INET6 if ":" in ad else socket.AF_INET
            w = 128 if fam == socket.AF_INET6 else 32
            x = int.from_bytes(socket.inet_pton(fam, ad), "big")
            x &= ((1 << w) - 1) ^ ((1 << (w - ln)) - 1)
            k = (w, x, ln)
            if ln == 0 or k in seen:
                continue
            seen.add(k)
            (v4 if w == 32 else v6).append((x, ln))
    del seen
    pickle.dump((v4, v6), open(CACHE, "wb"))
if a.limit:
    v4, v6 = v4[: a.limit], v6[: a.limit]


def feed_order(lst, b):
    """oxr-rib's feed order over B-bit buckets, then oxr-fea's bit-reversal of each batch."""
    w = WIDTH
    def rank(n):
        return (int(format(n[0] >> (w - b), "0%db" % b)[::-1], 2), n[0], n[1])
    lst = sorted(lst, key=rank)
    out = []
    for i in range(0, len(lst), 2000):
        out += sorted(lst[i:i + 2000], key=lambda x: int(format(x[0], "0%db" % w)[::-1], 2))
    return out


def order(lst):
    if a.order == "file":
        return lst
    if a.order == "shuffle":
        lst = lst[:]
        random.Random(a.seed).shuffle(lst)
        return lst
    if a.order == "sorted":
        return sorted(lst)
    if a.order == "lenasc":
        return sorted(lst, key=lambda n: (n[1], n[0]))
    if a.order == "lendesc":
        return sorted(lst, key=lambda n: (-n[1], n[0]))
    if a.order == "rev":
        return lst[::-1]
    if a.order == "bitrev":
        w = WIDTH
        def br(x):
            return int(format(x[0], "0%db" % w)[::-1], 2)
        return sorted(lst, key=br)
    if a.order.startswith("chunklen:"):
        k = int(a.order.split(":")[1])
        out = []
        for i in range(0, len(lst), k):
            out += sorted(lst[i:i + k], key=lambda n: (n[1], n[0]))
        return out
    if a.order.startswith("chunkbitrev:") or a.order.startswith("chunkshuf:"):
        k = int(a.order.split(":")[1])
        w = WIDTH
        out = []
        rng = random.Random(a.seed)
        for i in range(0, len(lst), k):
            c = lst[i:i + k]
            if a.order.startswith("chunkshuf"):
                rng.shuffle(c)
            else:
                c = sorted(c, key=lambda x: int(format(x[0], "0%db" % w)[::-1], 2))
            out += c
        return out
    if a.order.startswith("bucketbitrev:"):
        # What a sweep of the RIB's IPv4 index in bit-reversed bucket order sends: buckets
        # (the top B bits) in bit-reversed order, each bucket in address order, then every
        # window of 2,000 (one FIB batch) bit-reversed as oxr-fea does.
        return feed_order(lst, int(a.order.split(":")[1]))
    if a.order.startswith("passes:"):
        # A table arriving in random order while the RIB sweeps it: K passes, each the
        # routes that arrived since the last one, in bucketbitrev:16 order.
        k = int(a.order.split(":")[1])
        lst = lst[:]
        random.Random(a.seed).shuffle(lst)
        step = (len(lst) + k - 1) // k
        out = []
        for i in range(0, len(lst), step):
            out += feed_order(lst[i:i + step], 16)
        return out
    raise SystemExit("bad order")


WIDTH = 32
v4 = order(v4)
WIDTH = 128
v6 = order(v6)

ns = "fea-exp-%d" % os.getpid()


def ip(*args):
    subprocess.run(["ip", "-n", ns, *args], check=True, capture_output=True)


subprocess.run(["ip", "netns", "add", ns], check=True)
try:
    ip("link", "set", "lo", "up")
    ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
    ip("link", "set", "veth0", "up")
    ip("link", "set", "veth1", "up")
    ip("addr", "add", "10.0.0.1/16", "dev", "veth0")
    ip("addr", "add", "2001:db8:ffff::1/64", "dev", "veth0", "nodad")
    ip("nexthop", "add", "id", "1000000", "via", "10.0.0.2", "dev", "veth0", "proto", "201")
    ip("nexthop", "add", "id", "1000001", "via", "2001:db8:ffff::2", "dev", "veth0", "proto", "201")
    ifindex = int(subprocess.run(["ip", "-n", ns, "-o", "link", "show", "dev", "veth0"],
                                 check=True, capture_output=True, text=True).stdout.split(":")[0])
    flags = NLM_F_REQUEST | NLM_F_CREATE | (NLM_F_REPLACE if a.flags == "replace" else NLM_F_EXCL)

    def attr(t, data):
        ln = 4 + len(data)
        return struct.pack("=HH", ln, t) + data + b"\0" * ((4 - ln % 4) % 4)

    def frame(n, seq, ack, v6):
        fam = 10 if v6 else 2
        body = struct.pack("=BBBBBBBBI", fam, n[1], 0, 0, 254, 201, 0, 1, 0)
        body += attr(1, n[0].to_bytes(16 if v6 else 4, "big"))
        if a.table:
            body += attr(15, struct.pack("=I", 254))
        if a.gw:
            gw = ipaddress.ip_address("2001:db8:ffff::2" if v6 else "10.0.0.2")
            body += attr(5, gw.packed) + attr(4, struct.pack("=I", ifindex))
        else:
            body += attr(30, struct.pack("=I", 1000001 if v6 else 1000000))
        return struct.pack("=IHHII", 16 + len(body), RTM_NEWROUTE, flags | (NLM_F_ACK if ack else 0), seq, 0) + body

    def datagrams(lst, v6):
        out = []
        seq = 1
        for i in range(0, len(lst), a.batch):
            chunk = lst[i:i + a.batch]
            b = b"".join(frame(n, seq + j, j == len(chunk) - 1, v6) for j, n in enumerate(chunk))
            out.append((b, seq + len(chunk) - 1))
            seq += len(chunk)
        return out

    def shard(lst, k, w):
        if k == 1:
            return [lst]
        if a.shard == "hash":
            parts = [[] for _ in range(k)]
            for n in lst:
                parts[hash(n) % k].append(n)
            return parts
        # by top address bit ranges: contiguous slices of the (address-sorted) space
        parts = [[] for _ in range(k)]
        for n in lst:
            parts[min(k - 1, (n[0] >> (w - 8)) * k // 256)].append(n)
        return parts

    jobs = []
    if not a.no4:
        for p in shard(v4, a.threads4, 32):
            jobs.append(("v4", datagrams(p, False)))
    if a.v6:
        for p in shard(v6, a.threads6, 128):
            jobs.append(("v6", datagrams(p, True)))
    results = {}

    def run(idx, name, dgs):
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
        if a.sndbuf:
            s.setsockopt(socket.SOL_SOCKET, 32, a.sndbuf)  # SO_SNDBUFFORCE
        s.bind((0, 0))
        errs = 0
        r0 = resource.getrusage(resource.RUSAGE_THREAD)
        t0 = time.perf_counter()
        for b, last in dgs:
            s.send(b)
            while True:
                m = s.recv(1 << 16)
                off = 0
                done = False
                while off < len(m):
                    ln, ty, fl, sq, pid = struct.unpack_from("=IHHII", m, off)
                    if ty == 2:
                        (e,) = struct.unpack_from("=i", m, off + 16)
                        if e != 0:
                            errs += 1
                        if sq == last:
                            done = True
                    off += (ln + 3) & ~3
                if done:
                    break
        t = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_THREAD)
        results[idx] = (name, r1.ru_nvcsw - r0.ru_nvcsw, t, r1.ru_stime - r0.ru_stime, errs,
                        sum(len(b) for b, _ in dgs))

    # Sockets must be created inside the namespace: enter it for the whole process.
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/var/run/netns/" + ns, os.O_RDONLY)
    assert libc.setns(fd, 0x40000000) == 0
    os.close(fd)
    ths = [threading.Thread(target=run, args=(i, n, d)) for i, (n, d) in enumerate(jobs)]
    t0 = time.perf_counter()
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    total = time.perf_counter() - t0
    n4 = 0 if a.no4 else len(v4)
    n6 = len(v6) if a.v6 else 0
    cnt = subprocess.run("ip -4 route show proto 201 | wc -l; ip -6 route show proto 201 | wc -l", shell=True,
                         capture_output=True, text=True).stdout.split()
    print("order=%s threads4=%d batch=%d flags=%s gw=%s table=%s v4=%d v6=%d -> total %.2f s (%.2f us/route) kernel has %s"
          % (a.order, a.threads4, a.batch, a.flags, a.gw, a.table, n4, n6, total, total * 1e6 / max(1, n4 + n6), cnt))
    for i in sorted(results):
        name, _, t, st, errs, by = results[i]
        print("  thread %d %s: %.2f s wall, %.2f s sys, %d errors, %d voluntary switches" % (i, name, t, st, errs, _))
finally:
    subprocess.run(["ip", "netns", "del", ns])
