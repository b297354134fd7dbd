/* Map layouts shared by the XDP program (fastpath.c) and oxr-fastpath (src/xdp.rs, which
 * writes the same bytes; keep both in step). Little-endian host assumed for u32 fields. */
#ifndef OXR_FASTPATH_H
#define OXR_FASTPATH_H

/* Next-hop kinds (struct fp_nexthop.kind). */
#define FP_NH_NONE 0      /* unused slot: pass */
#define FP_NH_GATEWAY 1   /* forward to `gw` on `ifindex` */
#define FP_NH_DIRECT 2    /* on-link: forward to the packet's destination on `ifindex` */
#define FP_NH_LOCAL 3     /* one of our addresses: pass to the kernel */
#define FP_NH_BLACKHOLE 4 /* drop */
#define FP_NH_REJECT 5    /* pass: the kernel sends the ICMP unreachable */
#define FP_NH_GROUP 6     /* ECMP: group id in the first 4 bytes of `gw` (struct fp_group) */

/* Paths per ECMP group, and groups (src/tables.rs MAX_PATHS, MAX_GROUPS). */
#define FP_GROUP_PATHS 16
#define FP_GROUPS 4096

/* Outcome counters (index into the per-CPU `counters` array). */
#define FP_C_RX 0
#define FP_C_FORWARDED 1
#define FP_C_PASS_NOT_IP 2
#define FP_C_PASS_LOCAL 3
#define FP_C_PASS_TTL 4
#define FP_C_PASS_NO_ROUTE 5
#define FP_C_PASS_NO_NEIGH 6
#define FP_C_PASS_IP_OPTIONS 7
#define FP_C_DROP_BLACKHOLE 8
#define FP_C_PASS_REJECT 9
#define FP_C_PASS_MTU 10
#define FP_C_PASS_NOT_ATTACHED 11
#define FP_C_PASS_OTHER 12
#define FP_C_TO_USERSPACE 13
#define FP_C_ECMP 14 /* a path picked from an ECMP group (also counted by its outcome) */
#define FP_C_MAX 16

struct fp_lpm4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct fp_lpm6_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* 24 bytes. */
struct fp_nexthop {
	__u32 kind;
	__u32 ifindex;
	__u8 gw[16]; /* IPv4 in the first 4 bytes */
};

/* 24 bytes. */
struct fp_neigh_key {
	__u32 ifindex;
	__u32 family; /* 4 or 6 */
	__u8 addr[16];
};

/* 68 bytes: the members of an ECMP group, next-hop ids (gateway / direct next hops). */
struct fp_group {
	__u32 n;
	__u32 member[FP_GROUP_PATHS];
};

/* 16 bytes: everything the rewrite needs. */
struct fp_neigh {
	__u8 dmac[6];
	__u8 smac[6];
	__u32 mtu;
};

#endif
