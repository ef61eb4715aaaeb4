// pass.c: XDP program that passes every frame to the kernel stack.
//
// The benchmark attaches it to every veth that receives frames sent by an
// XDP program (XDP_TX or XDP_REDIRECT). On veth such frames are delivered
// only when the receiving end runs in NAPI mode, and an attached XDP
// program is what reliably switches it there (see
// shared/reference/netns-testbed.md). It is attached for every peer, so all
// peers run with the same settings.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int bench_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
