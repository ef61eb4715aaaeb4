// fwd.c: the do-nothing XDP router for the two-arm (NAT) layout.
//
// Attached to both director veths. A frame from the public side for the
// real server's address is redirected to the private side with the real
// server's MAC; a frame from the private side that is not for the director
// is redirected to the public side with the client's MAC. No TTL update, no
// route lookup, no balancing: the XDP counterpart of plain kernel
// forwarding (peer "kfwd"), with the same addresses on the wire.
//
// Build: clang -O2 -target bpf -DPUB_IF= -DPRIV_IF= -DRS_IP= -DDIR_PRIV_IP=
//        -DRS_MAC= -DCL_MAC= -DPUB_MAC= -DPRIV_MAC=
#include "bench.h"

SEC("xdp")
int bench_fwd(struct xdp_md *ctx)
{
	static const __u8 rs_mac[ETH_ALEN] = { RS_MAC };
	static const __u8 cl_mac[ETH_ALEN] = { CL_MAC };
	static const __u8 pub_mac[ETH_ALEN] = { PUB_MAC };
	static const __u8 priv_mac[ETH_ALEN] = { PRIV_MAC };
	struct iphdr *ip = ipv4_hdr(ctx);

	if (!ip)
		return XDP_PASS;
	if (ctx->ingress_ifindex == PUB_IF && ip->daddr == bpf_htonl(RS_IP)) {
		set_macs(ctx, rs_mac, priv_mac);
		return bpf_redirect(PRIV_IF, 0);
	}
	if (ctx->ingress_ifindex == PRIV_IF && ip->daddr != bpf_htonl(DIR_PRIV_IP)) {
		set_macs(ctx, cl_mac, pub_mac);
		return bpf_redirect(PUB_IF, 0);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
