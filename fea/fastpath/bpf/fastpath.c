// SPDX-License-Identifier: (MIT OR Apache-2.0) AND GPL-2.0
/* oxr-fastpath's XDP program: an IPv4/IPv6 router over maps filled by oxr-fastpath.
 *
 * Per packet: parse Ethernet and the IP header, check TTL / hop limit, look the destination up
 * in an LPM trie (-> next-hop id), read the next hop (egress ifindex, gateway), look the
 * neighbor up (-> MACs, egress MTU), then either redirect through the devmap with TTL
 * decremented and MACs rewritten (mode 0, the `xdp` engine) or hand the untouched frame to the
 * AF_XDP socket of this queue (mode 1, the `afxdp` engine, which does the same work in user
 * space). Whatever cannot be forwarded goes XDP_PASS to the kernel: local destinations, TTL
 * expiry (the kernel sends the ICMP), no route, unresolved neighbor (the kernel resolves it
 * and forwards the first packets; oxr-fastpath mirrors the new neighbor), ARP/ND, IP options,
 * too big for the egress MTU. Each outcome has a per-CPU counter. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "fastpath.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1048576);
	__type(key, struct fp_lpm4_key);
	__type(value, __u32);
} routes4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 262144);
	__type(key, struct fp_lpm6_key);
	__type(value, __u32);
} routes6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct fp_nexthop);
} nexthops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FP_GROUPS);
	__type(key, __u32);
	__type(value, struct fp_group);
} groups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct fp_neigh_key);
	__type(value, struct fp_neigh);
} neighbors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} tx_ports SEC(".maps");

/* AF_XDP sockets: slot xsk_base[ingress ifindex] + rx queue. */
struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsk_base SEC(".maps");

/* [0]: mode (0 = redirect in XDP, 1 = to the AF_XDP socket of the rx queue). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FP_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int count(__u32 idx, int action)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
	return action;
}

/* The flow hash of src/tables.rs `flow_hash`: FNV-1a over 32-bit words (host-order loads of
 * the wire bytes), murmur3 fmix32 at the end. */
static __always_inline __u32 mix(__u32 h, __u32 w)
{
	return (h ^ w) * 0x01000193;
}

static __always_inline __u32 fmix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	return h ^ (h >> 16);
}

/* Ports (first 4 bytes of TCP/UDP/SCTP) at `l4`, 0 for other protocols or short frames. */
static __always_inline __u32 ports_at(void *l4, void *data_end, __u8 proto)
{
	__u32 p = 0;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_SCTP)
		return 0;
	if (l4 + 4 > data_end)
		return 0;
	__builtin_memcpy(&p, l4, 4);
	return p;
}

static __always_inline __u32 flow_hash4(struct iphdr *iph, void *data_end)
{
	__u32 h = 0x811c9dc5;

	h = mix(h, iph->saddr);
	h = mix(h, iph->daddr);
	h = mix(h, ports_at((void *)(iph + 1), data_end, iph->protocol));
	h = mix(h, iph->protocol);
	return fmix(h);
}

static __always_inline __u32 flow_hash6(struct ipv6hdr *ip6, void *data_end)
{
	__u32 h = 0x811c9dc5;
	__u32 *a = (__u32 *)&ip6->saddr; /* saddr and daddr: 8 words */

#pragma unroll
	for (int i = 0; i < 8; i++)
		h = mix(h, a[i]);
	h = mix(h, ports_at((void *)(ip6 + 1), data_end, ip6->nexthdr));
	h = mix(h, ip6->nexthdr);
	return fmix(h);
}

/* Whether next hop `nh_id` is an ECMP group (its id in *gid). */
static __always_inline __u32 group_gid(__u32 nh_id, __u32 *gid)
{
	struct fp_nexthop *nh = bpf_map_lookup_elem(&nexthops, &nh_id);

	if (!nh || nh->kind != FP_NH_GROUP)
		return 0;
	__builtin_memcpy(gid, nh->gw, 4);
	return 1;
}

/* The member of group `gid` that `hash` picks; ~0 (no such next hop) if the group is empty. */
static __always_inline __u32 pick(__u32 gid, __u32 hash)
{
	struct fp_group *g = bpf_map_lookup_elem(&groups, &gid);
	__u32 n, i;

	if (!g)
		return ~0U;
	n = g->n;
	if (n == 0 || n > FP_GROUP_PATHS)
		return ~0U;
	i = hash % n;
	/* i < n <= FP_GROUP_PATHS already; the mask (hidden from the compiler, which would
	 * drop it) is the bound the verifier needs for the array index. */
	asm volatile("" : "+r"(i));
	i &= FP_GROUP_PATHS - 1;
	count(FP_C_ECMP, 0);
	return g->member[i];
}

/* Resolves next hop `nh_id` for a destination; returns the neighbor entry or NULL, with
 * *verdict set to the counter index of the outcome when NULL. */
static __always_inline struct fp_neigh *resolve(__u32 nh_id, __u32 family, const __u8 *dst,
						__u32 *ifindex, __u32 *verdict)
{
	struct fp_nexthop *nh = bpf_map_lookup_elem(&nexthops, &nh_id);
	struct fp_neigh_key k = {};

	if (!nh) {
		*verdict = FP_C_PASS_NO_ROUTE;
		return NULL;
	}
	switch (nh->kind) {
	case FP_NH_GATEWAY:
		__builtin_memcpy(k.addr, nh->gw, 16);
		break;
	case FP_NH_DIRECT:
		if (family == 4)
			__builtin_memcpy(k.addr, dst, 4);
		else
			__builtin_memcpy(k.addr, dst, 16);
		break;
	case FP_NH_LOCAL:
		*verdict = FP_C_PASS_LOCAL;
		return NULL;
	case FP_NH_BLACKHOLE:
		*verdict = FP_C_DROP_BLACKHOLE;
		return NULL;
	case FP_NH_REJECT:
		*verdict = FP_C_PASS_REJECT;
		return NULL;
	default:
		*verdict = FP_C_PASS_NO_ROUTE;
		return NULL;
	}
	k.ifindex = nh->ifindex;
	k.family = family;
	*ifindex = nh->ifindex;
	struct fp_neigh *n = bpf_map_lookup_elem(&neighbors, &k);
	if (!n) {
		*verdict = FP_C_PASS_NO_NEIGH;
		return NULL;
	}
	/* Whether the egress is attached is asked by finish(): bpf_redirect_map's own lookup
	 * in the xdp mode, which saves a devmap lookup per packet. */
	return n;
}

/* Hands a frame that will be forwarded to its egress. The devmap redirect is set up first:
 * it only records the target (the frame moves after the program returns), and its XDP_PASS
 * fallback says the egress is not attached, before anything in the frame is rewritten. */
static __always_inline int finish(struct xdp_md *ctx, struct ethhdr *eth, struct fp_neigh *n,
				  __u32 ifindex, __u32 mode, __u8 *ttl, __u16 *check)
{
	if (mode == 1) {
		if (!bpf_map_lookup_elem(&tx_ports, &ifindex))
			return count(FP_C_PASS_NOT_ATTACHED, XDP_PASS);
		/* User space rewrites; the frame goes untouched to this queue's socket. */
		__u32 in = ctx->ingress_ifindex;
		__u32 *base = bpf_map_lookup_elem(&xsk_base, &in);
		if (!base)
			return count(FP_C_PASS_NOT_ATTACHED, XDP_PASS);
		int r = bpf_redirect_map(&xsks, *base + ctx->rx_queue_index, XDP_PASS);
		if (r == XDP_REDIRECT)
			return count(FP_C_TO_USERSPACE, r);
		return count(FP_C_PASS_OTHER, r);
	}
	int r = bpf_redirect_map(&tx_ports, ifindex, XDP_PASS);
	if (r != XDP_REDIRECT)
		return count(FP_C_PASS_NOT_ATTACHED, XDP_PASS);
	if (check) {
		/* RFC 1624 incremental update for a TTL decrement (as the kernel's
		 * ip_decrease_ttl). */
		__u32 c = (__u32)*check + (__u32)bpf_htons(0x0100);
		*check = (__u16)(c + (c >= 0xFFFF));
	}
	(*ttl)--;
	__builtin_memcpy(eth->h_dest, n->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, n->smac, ETH_ALEN);
	return count(FP_C_FORWARDED, r);
}

SEC("xdp")
int oxr_fastpath(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 zero = 0, mode = 0, verdict = FP_C_PASS_OTHER, ifindex = 0;
	__u32 *m;
	struct fp_neigh *n;

	count(FP_C_RX, 0);
	if ((void *)(eth + 1) > data_end)
		return count(FP_C_PASS_OTHER, XDP_PASS);
	/* Multicast / broadcast frames are the kernel's. */
	if (eth->h_dest[0] & 1)
		return count(FP_C_PASS_NOT_IP, XDP_PASS);
	m = bpf_map_lookup_elem(&config, &zero);
	if (m)
		mode = *m;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);
		struct fp_lpm4_key key = {.prefixlen = 32};
		__u32 *nh_id;

		if ((void *)(iph + 1) > data_end)
			return count(FP_C_PASS_OTHER, XDP_PASS);
		if (iph->version != 4)
			return count(FP_C_PASS_OTHER, XDP_PASS);
		if (iph->ihl != 5)
			return count(FP_C_PASS_IP_OPTIONS, XDP_PASS);
		if (iph->ttl <= 1)
			return count(FP_C_PASS_TTL, XDP_PASS);
		/* Multicast and limited broadcast. */
		if ((bpf_ntohl(iph->daddr) >> 28) == 0xe || iph->daddr == 0xffffffff)
			return count(FP_C_PASS_LOCAL, XDP_PASS);
		__builtin_memcpy(key.addr, &iph->daddr, 4);
		nh_id = bpf_map_lookup_elem(&routes4, &key);
		if (!nh_id)
			return count(FP_C_PASS_NO_ROUTE, XDP_PASS);
		__u32 id = *nh_id, gid;
		if (group_gid(id, &gid))
			id = pick(gid, flow_hash4(iph, data_end));
		n = resolve(id, 4, (const __u8 *)&iph->daddr, &ifindex, &verdict);
		if (!n) {
			if (verdict == FP_C_DROP_BLACKHOLE)
				return count(verdict, XDP_DROP);
			return count(verdict, XDP_PASS);
		}
		if (bpf_ntohs(iph->tot_len) > n->mtu)
			return count(FP_C_PASS_MTU, XDP_PASS);
		return finish(ctx, eth, n, ifindex, mode, &iph->ttl, &iph->check);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct fp_lpm6_key key = {.prefixlen = 128};
		__u32 *nh_id;

		if ((void *)(ip6 + 1) > data_end)
			return count(FP_C_PASS_OTHER, XDP_PASS);
		if (ip6->version != 6)
			return count(FP_C_PASS_OTHER, XDP_PASS);
		if (ip6->hop_limit <= 1)
			return count(FP_C_PASS_TTL, XDP_PASS);
		/* Multicast (ND among others) and link-local destinations are the kernel's. */
		if (ip6->daddr.in6_u.u6_addr8[0] == 0xff ||
		    (ip6->daddr.in6_u.u6_addr8[0] == 0xfe && (ip6->daddr.in6_u.u6_addr8[1] & 0xc0) == 0x80))
			return count(FP_C_PASS_LOCAL, XDP_PASS);
		/* Hop-by-hop options must be looked at by every router. */
		if (ip6->nexthdr == 0)
			return count(FP_C_PASS_IP_OPTIONS, XDP_PASS);
		__builtin_memcpy(key.addr, &ip6->daddr, 16);
		nh_id = bpf_map_lookup_elem(&routes6, &key);
		if (!nh_id)
			return count(FP_C_PASS_NO_ROUTE, XDP_PASS);
		__u32 id = *nh_id, gid;
		if (group_gid(id, &gid))
			id = pick(gid, flow_hash6(ip6, data_end));
		n = resolve(id, 6, (const __u8 *)&ip6->daddr, &ifindex, &verdict);
		if (!n) {
			if (verdict == FP_C_DROP_BLACKHOLE)
				return count(verdict, XDP_DROP);
			return count(verdict, XDP_PASS);
		}
		if (bpf_ntohs(ip6->payload_len) + sizeof(*ip6) > n->mtu)
			return count(FP_C_PASS_MTU, XDP_PASS);
		return finish(ctx, eth, n, ifindex, mode, &ip6->hop_limit, NULL);
	}
	return count(FP_C_PASS_NOT_IP, XDP_PASS);
}

/* Loaded on the egress side's peers by tests and on interfaces that only need NAPI. */
SEC("xdp")
int oxr_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
