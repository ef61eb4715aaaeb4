// bench.h: shared helpers for the benchmark's do-nothing XDP programs.
//
// Addresses are compile-time constants passed with -D by bench/run.sh:
// MAC addresses as six comma-separated bytes, IPv4 addresses as host-order
// 32-bit numbers, interface indexes as numbers.
#ifndef BENCH_H
#define BENCH_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// ipv4_hdr returns the IPv4 header of an Ethernet frame, or NULL when the
// frame is not IPv4 or is too short.
static __always_inline struct iphdr *ipv4_hdr(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	return ip;
}

// set_macs rewrites the destination and source MAC of the frame.
static __always_inline void set_macs(struct xdp_md *ctx, const __u8 *dst,
				     const __u8 *src)
{
	struct ethhdr *eth = (void *)(long)ctx->data;

	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
}

#endif
