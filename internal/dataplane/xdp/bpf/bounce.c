// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The bare bounce: swap MAC addresses of IP frames and send them back out.
 * It is the ceiling any XDP director is measured against (benchmarks and
 * BPF_PROG_TEST_RUN comparisons); govs never attaches it in production. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int govs_bounce(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[6];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(tmp, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, tmp, 6);
	return XDP_TX;
}

/* govs_pass lets every frame through. Attached to the receiving end of a
 * veth pair it switches that end to NAPI mode, which XDP_TX and
 * XDP_REDIRECT into veth need to deliver (test and benchmark labs). */
SEC("xdp")
int govs_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
