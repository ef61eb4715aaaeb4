// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* govs real-server decapsulation for TUN: strips an outer IPv4 or IPv6
 * header from IP-in-IP / IP6-in-IP6 packets whose inner destination is a
 * configured virtual address, and passes the inner packet to the kernel.
 * Kernels without the ipip/ip6_tunnel modules can serve TUN this way. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct vip_key {
	__u8 family; /* 4 or 6 */
	__u8 pad[3];
	__u8 addr[16];
};

enum decap_counter {
	DECAP_OK = 0,
	DECAP_PASS_NOT_TUNNEL,
	DECAP_PASS_NOT_VIP,
	DECAP_DROP_MALFORMED,
	DECAP_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct vip_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} decap_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DECAP_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} decap_stats SEC(".maps");

const enum decap_counter *unused_decap_counter __attribute__((unused));
const struct vip_key *unused_vip_key __attribute__((unused));

static __always_inline int finish(__u32 reason, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&decap_stats, &reason);
	if (c)
		*c += 1;
	return verdict;
}

/* strip removes hlen bytes of outer header after the Ethernet header. */
static __always_inline int strip(struct xdp_md *ctx, __u32 hlen, __u16 inner_proto)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr eth;
	if (data + sizeof(eth) > data_end)
		return finish(DECAP_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(&eth, data, sizeof(eth));
	eth.h_proto = bpf_htons(inner_proto);
	if (bpf_xdp_adjust_head(ctx, (int)hlen))
		return finish(DECAP_DROP_MALFORMED, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + sizeof(eth) > data_end)
		return finish(DECAP_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(data, &eth, sizeof(eth));
	return finish(DECAP_OK, XDP_PASS);
}

/* inner_is_vip checks the inner destination against decap_vips. */
static __always_inline int inner_is_vip(void *inner, void *data_end, __u8 proto)
{
	struct vip_key k = {};
	if (proto == IPPROTO_IPIP) {
		struct iphdr *in = inner;
		if ((void *)(in + 1) > data_end)
			return -1;
		k.family = 4;
		__builtin_memcpy(k.addr, &in->daddr, 4);
	} else {
		struct ipv6hdr *in = inner;
		if ((void *)(in + 1) > data_end)
			return -1;
		k.family = 6;
		__builtin_memcpy(k.addr, &in->daddr, 16);
	}
	return bpf_map_lookup_elem(&decap_vips, &k) != NULL;
}

#define ECN_CE 3

/* outer_ce says whether the outer header carries congestion experienced. */
static __always_inline int outer_ce(struct ethhdr *eth, void *data_end)
{
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);
		return (void *)(iph + 1) <= data_end && (iph->tos & 3) == ECN_CE;
	}
	__u8 *ip6 = (void *)(eth + 1);
	/* traffic class: the low nibble of byte 0, the high one of byte 1 */
	return (void *)(ip6 + 2) <= data_end && ((ip6[1] >> 4) & 3) == ECN_CE;
}

/* inner_ce carries a congestion mark of the outer header into an inner
 * packet that is ECN-capable (RFC 6040 §4.2, normal mode; an inner
 * packet that is not keeps no mark: the encapsulator copied the inner
 * ECN field out, so it was not-ECT outside too only if the network
 * marked it against the rules). */
static __always_inline void inner_ce(void *inner, void *data_end, __u8 proto)
{
	if (proto == IPPROTO_IPIP) {
		struct iphdr *in = inner;
		if ((void *)(in + 1) > data_end || (in->tos & 3) == 0 || (in->tos & 3) == ECN_CE)
			return;
		/* tos is the low byte of the header's first 16-bit word */
		__u16 old = bpf_htons(((__u16)(in->version << 4 | in->ihl) << 8) | in->tos);
		in->tos |= ECN_CE;
		__u16 new = bpf_htons(((__u16)(in->version << 4 | in->ihl) << 8) | in->tos);
		__u32 sum = (__u16)~in->check + (__u16)~old + new;
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		in->check = ~sum;
		return;
	}
	__u8 *in6 = inner;
	if ((void *)(in6 + 2) > data_end)
		return;
	__u8 ecn = (in6[1] >> 4) & 3;
	if (ecn != 0 && ecn != ECN_CE)
		in6[1] |= ECN_CE << 4;
}

SEC("xdp")
int govs_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u32 hlen;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return finish(DECAP_DROP_MALFORMED, XDP_DROP);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (void *)(eth + 1);
		if ((void *)(iph + 1) > data_end)
			return finish(DECAP_DROP_MALFORMED, XDP_DROP);
		proto = iph->protocol;
		hlen = iph->ihl * 4;
		if (iph->frag_off & bpf_htons(0x3fff))
			return finish(DECAP_PASS_NOT_TUNNEL, XDP_PASS);
		if (hlen < sizeof(*iph) || hlen > 60)
			return finish(DECAP_DROP_MALFORMED, XDP_DROP);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > data_end)
			return finish(DECAP_DROP_MALFORMED, XDP_DROP);
		proto = ip6->nexthdr;
		hlen = sizeof(*ip6);
	} else {
		return finish(DECAP_PASS_NOT_TUNNEL, XDP_PASS);
	}
	if (proto != IPPROTO_IPIP && proto != IPPROTO_IPV6)
		return finish(DECAP_PASS_NOT_TUNNEL, XDP_PASS);
	void *inner = (void *)(eth + 1) + hlen;
	if (inner > data_end)
		return finish(DECAP_DROP_MALFORMED, XDP_DROP);
	int ok = inner_is_vip(inner, data_end, proto);
	if (ok < 0)
		return finish(DECAP_DROP_MALFORMED, XDP_DROP);
	if (!ok)
		return finish(DECAP_PASS_NOT_VIP, XDP_PASS);
	if (outer_ce(eth, data_end))
		inner_ce(inner, data_end, proto);
	return strip(ctx, hlen, proto == IPPROTO_IPIP ? ETH_P_IP : ETH_P_IPV6);
}
