/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Checksums, transmission, ICMP too-big and tunnel encapsulation
 * (included by lb.c). */
#ifndef GOVS_ENCAP_H
#define GOVS_ENCAP_H

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static __always_inline __u16 ipv4_csum(struct iphdr *iph)
{
	__u16 *p = (__u16 *)iph;
	__u64 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += p[i];
	return csum_fold(sum);
}

static __always_inline int xmit(struct xdp_md *ctx, const struct real *r, __u32 tx, __u32 redir)
{
	if ((r->flags & REAL_F_TX) || r->ifindex == 0)
		return done(tx, XDP_TX);
	if (!(r->flags & REAL_F_REDIR) && r->ifindex == ctx->ingress_ifindex)
		return done(tx, XDP_TX);
	return done(redir, bpf_redirect(r->ifindex, 0));
}

/* send_toobig turns the packet into an ICMP fragmentation-needed (IPv4)
 * or packet-too-big (IPv6) message back to its source, quoting the
 * original header and 8 bytes, and bounces it out the ingress port. */
static __always_inline int send_toobig4(struct xdp_md *ctx, __u32 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	if ((void *)(iph + 1) + 8 > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	if (iph->ihl != 5)
		return done(EXIT_DROP_TOOBIG, XDP_DROP);
	__u8 smac[6], dmac[6];
	__builtin_memcpy(smac, eth->h_source, 6);
	__builtin_memcpy(dmac, eth->h_dest, 6);
	__u32 saddr = iph->saddr, daddr = iph->daddr;
	__u32 hdr = sizeof(struct iphdr) + sizeof(struct icmphdr);
	if (bpf_xdp_adjust_head(ctx, -(int)hdr))
		return done(EXIT_DROP_ADJUST, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	int want = sizeof(struct ethhdr) + hdr + sizeof(struct iphdr) + 8;
	if (bpf_xdp_adjust_tail(ctx, want - (int)(data_end - data)))
		return done(EXIT_DROP_ADJUST, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	iph = data + sizeof(*eth);
	struct icmphdr *icmp = (void *)(iph + 1);
	if ((void *)icmp + sizeof(*icmp) + sizeof(struct iphdr) + 8 > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, smac, 6);
	__builtin_memcpy(eth->h_source, dmac, 6);
	eth->h_proto = bpf_htons(ETH_P_IP);
	iph->version = 4;
	iph->ihl = 5;
	iph->tos = 0;
	iph->tot_len = bpf_htons(hdr + sizeof(struct iphdr) + 8);
	iph->id = 0;
	iph->frag_off = 0;
	iph->ttl = TTL_OUT;
	iph->protocol = IPPROTO_ICMP;
	iph->saddr = daddr;
	iph->daddr = saddr;
	iph->check = 0;
	iph->check = ipv4_csum(iph);
	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->checksum = 0;
	icmp->un.frag.__unused = 0;
	icmp->un.frag.mtu = bpf_htons(mtu);
	__s64 sum = bpf_csum_diff(0, 0, (__be32 *)icmp, sizeof(*icmp) + sizeof(struct iphdr) + 8, 0);
	icmp->checksum = csum_fold(sum);
	return done(EXIT_TX_ICMP_TOOBIG, XDP_TX);
}

static __always_inline int send_toobig6(struct xdp_md *ctx, __u32 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);
	if ((void *)(ip6 + 1) + 8 > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	__u8 smac[6], dmac[6];
	struct in6_addr saddr, daddr;
	__builtin_memcpy(smac, eth->h_source, 6);
	__builtin_memcpy(dmac, eth->h_dest, 6);
	__builtin_memcpy(&saddr, &ip6->saddr, 16);
	__builtin_memcpy(&daddr, &ip6->daddr, 16);
	__u32 hdr = sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr);
	if (bpf_xdp_adjust_head(ctx, -(int)hdr))
		return done(EXIT_DROP_ADJUST, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	int want = sizeof(struct ethhdr) + hdr + sizeof(struct ipv6hdr) + 8;
	if (bpf_xdp_adjust_tail(ctx, want - (int)(data_end - data)))
		return done(EXIT_DROP_ADJUST, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	ip6 = data + sizeof(*eth);
	struct icmp6hdr *icmp = (void *)(ip6 + 1);
	__u32 plen = sizeof(*icmp) + sizeof(struct ipv6hdr) + 8;
	if ((void *)icmp + plen > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, smac, 6);
	__builtin_memcpy(eth->h_source, dmac, 6);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	__u32 vtcfl = bpf_htonl(6 << 28);
	__builtin_memcpy(ip6, &vtcfl, 4);
	ip6->payload_len = bpf_htons(plen);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = TTL_OUT;
	__builtin_memcpy(&ip6->saddr, &daddr, 16);
	__builtin_memcpy(&ip6->daddr, &saddr, 16);
	icmp->icmp6_type = ICMPV6_PKT_TOOBIG;
	icmp->icmp6_code = 0;
	icmp->icmp6_cksum = 0;
	icmp->icmp6_mtu = bpf_htonl(mtu);
	/* pseudo header: addresses, upper-layer length, next header */
	__be32 ph[2] = {bpf_htonl(plen), bpf_htonl(IPPROTO_ICMPV6)};
	__s64 sum = bpf_csum_diff(0, 0, (__be32 *)&ip6->saddr, 32, 0);
	sum = bpf_csum_diff(0, 0, ph, sizeof(ph), sum);
	sum = bpf_csum_diff(0, 0, (__be32 *)icmp, plen, sum);
	icmp->icmp6_cksum = csum_fold(sum);
	return done(EXIT_TX_ICMP_TOOBIG, XDP_TX);
}

/* encap prepends an outer IPv4 or IPv6 header toward the real server.
 * inner_proto is IPPROTO_IPIP or IPPROTO_IPV6, len the inner IP length. */
static __always_inline int encap(struct xdp_md *ctx, const struct real *r, const struct config *cfg,
				 const struct flow_key *fk, __u8 inner_proto, __u8 tos, __u16 df, __u32 len,
				 __u32 tx, __u32 redir)
{
	void *data, *data_end;
	struct ethhdr *eth;
	__u32 h = flow_hash(inner_proto == IPPROTO_IPIP ? FAM_V4 : FAM_V6, fk);

	if (r->family == FAM_V4) {
		if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
			return done(EXIT_DROP_ADJUST, XDP_DROP);
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		eth = data;
		struct iphdr *iph = data + sizeof(*eth);
		if ((void *)(iph + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		__builtin_memcpy(eth->h_dest, r->dmac, 6);
		__builtin_memcpy(eth->h_source, r->smac, 6);
		eth->h_proto = bpf_htons(ETH_P_IP);
		iph->version = 4;
		iph->ihl = 5;
		iph->tos = tos;
		iph->tot_len = bpf_htons(len + sizeof(struct iphdr));
		/* an ID only matters if the packet may be fragmented: then a
		 * random one, as the kernel's ip_select_ident would give,
		 * rather than one fragments of other packets share */
		iph->id = df ? 0 : (__u16)bpf_get_prandom_u32();
		iph->frag_off = df;
		iph->ttl = TTL_OUT;
		iph->protocol = inner_proto;
		if (cfg && (cfg->flags & CFG_F_TUN_SRC4)) {
			__u32 base;
			__builtin_memcpy(&base, cfg->tun_src4, 4);
			iph->saddr = bpf_htonl((bpf_ntohl(base) & ~cfg->tun_mask4) | (h & cfg->tun_mask4));
		} else {
			__builtin_memcpy(&iph->saddr, r->src, 4);
		}
		__builtin_memcpy(&iph->daddr, r->addr, 4);
		iph->check = 0;
		iph->check = ipv4_csum(iph);
		return xmit(ctx, r, tx, redir);
	}
	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct ipv6hdr)))
		return done(EXIT_DROP_ADJUST, XDP_DROP);
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	struct ipv6hdr *ip6 = data + sizeof(*eth);
	if ((void *)(ip6 + 1) > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, r->dmac, 6);
	__builtin_memcpy(eth->h_source, r->smac, 6);
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	__u32 vtcfl = bpf_htonl((6 << 28) | ((__u32)tos << 20) | (h & 0xfffff));
	__builtin_memcpy(ip6, &vtcfl, 4);
	ip6->payload_len = bpf_htons(len);
	ip6->nexthdr = inner_proto;
	ip6->hop_limit = TTL_OUT;
	if (cfg && (cfg->flags & CFG_F_TUN_SRC6)) {
		__u8 src[16];
		__u32 low;
		__builtin_memcpy(src, cfg->tun_src6, 16);
		__builtin_memcpy(&low, src + 12, 4);
		low = bpf_htonl((bpf_ntohl(low) & ~cfg->tun_mask6) | (h & cfg->tun_mask6));
		__builtin_memcpy(src + 12, &low, 4);
		__builtin_memcpy(&ip6->saddr, src, 16);
	} else {
		__builtin_memcpy(&ip6->saddr, r->src, 16);
	}
	__builtin_memcpy(&ip6->daddr, r->addr, 16);
	return xmit(ctx, r, tx, redir);
}

#endif
