// bounce.c: the do-nothing XDP director for the one-arm (L2) layout.
//
// A frame for the VIP gets the real server's MAC as destination and the
// director's MAC as source and leaves through the interface it came in on
// (XDP_TX), like direct routing without any scheduling, connection table or
// checks: the ceiling any XDP director can reach on this path. Everything
// else passes to the kernel.
//
// With CL_IP and CL_MAC defined it also bounces the replies of a real server
// that routes the client through the director: frames for the client get
// the client's MAC. That is the ceiling for a director that sees both
// directions, as a source-NAT one does.
//
// Build: clang -O2 -target bpf -DVIP=<u32> -DRS_MAC=<6 bytes> -DDIR_MAC=<6 bytes>
//        [-DCL_IP=<u32> -DCL_MAC=<6 bytes>]
#include "bench.h"

SEC("xdp")
int bench_bounce(struct xdp_md *ctx)
{
	static const __u8 rs_mac[ETH_ALEN] = { RS_MAC };
	static const __u8 dir_mac[ETH_ALEN] = { DIR_MAC };
	struct iphdr *ip = ipv4_hdr(ctx);

	if (!ip)
		return XDP_PASS;
#ifdef CL_IP
	if (ip->daddr == bpf_htonl(CL_IP)) {
		static const __u8 cl_mac[ETH_ALEN] = { CL_MAC };

		set_macs(ctx, cl_mac, dir_mac);
		return XDP_TX;
	}
#endif
	if (ip->daddr != bpf_htonl(VIP))
		return XDP_PASS;
	set_macs(ctx, rs_mac, dir_mac);
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
