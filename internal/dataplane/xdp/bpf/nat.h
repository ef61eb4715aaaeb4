/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* NAT and source NAT: address/port rewriting with incremental checksums,
 * source binding, and replies (included by lb.c). */
#ifndef GOVS_NAT_H
#define GOVS_NAT_H

#define AF_INET 2
#define AF_INET6 10

/* csum_update returns checksum check after the bytes from[] became to[]
 * (RFC 1624 incremental update through bpf_csum_diff). */
static __always_inline __u16 csum_update(__u16 check, __be32 *from, __u32 fsize, __be32 *to, __u32 tsize)
{
	__s64 sum = bpf_csum_diff(from, fsize, to, tsize, (__u16)~check);
	return csum_fold(sum);
}

/* rewrite changes one address and port of the packet (dst when dir is 0,
 * src when 1) and fixes the IPv4 header and TCP/UDP checksums. */
static __always_inline int rewrite(struct xdp_md *ctx, __u8 family, __u8 proto, __u32 l4off, int src,
				   const __u8 *naddr, __u16 nport)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = l4off & 0x7f;
	__u16 *l4 = data + off;
	if ((void *)(l4 + 4) > data_end) /* the UDP header, TCP's first 8 bytes */
		return -1;
	__u16 *csum;
	if (proto == IPPROTO_TCP) {
		if ((void *)(l4 + 10) > data_end)
			return -1;
		csum = l4 + 8;
	} else {
		csum = l4 + 3;
	}
	__be32 oport = src ? l4[0] : l4[1], np = nport;
	__be32 oaddr[4] = {}, na[4] = {};
	__u32 alen = family == FAM_V4 ? 4 : 16;

	if (family == FAM_V4) {
		struct iphdr *iph = data + sizeof(struct ethhdr);
		if ((void *)(iph + 1) > data_end)
			return -1;
		__be32 *a = src ? &iph->saddr : &iph->daddr;
		oaddr[0] = *a;
		__builtin_memcpy(na, naddr, 4);
		*a = na[0];
		iph->check = csum_update(iph->check, oaddr, 4, na, 4);
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		struct in6_addr *a = src ? &ip6->saddr : &ip6->daddr;
		__builtin_memcpy(oaddr, a, 16);
		__builtin_memcpy(na, naddr, 16);
		__builtin_memcpy(a, na, 16);
	}
	/* a UDP/IPv4 checksum of 0 means none */
	if (!(proto == IPPROTO_UDP && family == FAM_V4 && *csum == 0)) {
		__s64 sum = bpf_csum_diff(oaddr, alen, na, alen, (__u16)~*csum);
		sum = bpf_csum_diff(&oport, 4, &np, 4, sum);
		__u16 c = csum_fold(sum);
		if (proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*csum = c;
	}
	if (src)
		l4[0] = nport;
	else
		l4[1] = nport;
	return 0;
}

/* icmp_nat translates an ICMP error about a NAT flow. to_real: the error
 * comes from the client side and goes to the real server (outer
 * destination VIP → real, quoted source VIP:vport → real:rport); else it
 * comes from the real server and goes to the client (outer source real →
 * VIP, quoted destination real:rport → VIP:vport). The outer IPv4, quoted
 * IPv4, quoted UDP and ICMP checksums are updated incrementally. */
static __always_inline int icmp_nat(struct xdp_md *ctx, __u8 family, __u32 l4off, int to_real, const __u8 *naddr,
				    __u16 nport)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = l4off & 0x7f;
	__be32 oa[4] = {}, na[4] = {};
	__u32 alen = family == FAM_V4 ? 4 : 16;
	__u16 *icsum, *iports, *iudp = NULL;
	__u8 iproto;
	__s64 isum = 0; /* change of the ICMP message's sum */

	__builtin_memcpy(na, naddr, 16);
	if (family == FAM_V4) {
		struct iphdr *oip = data + sizeof(struct ethhdr);
		struct icmphdr *ic = data + off;
		struct iphdr *iip = (void *)(ic + 1);
		iports = (void *)(iip + 1);
		if ((void *)(oip + 1) > data_end || (void *)(iports + 2) > data_end)
			return -1;
		icsum = &ic->checksum;
		iproto = iip->protocol;
		if (iproto == IPPROTO_UDP && (void *)(iports + 4) <= data_end)
			iudp = iports + 3;
		/* outer address: IPv4 header checksum only */
		__be32 *outer = to_real ? &oip->daddr : &oip->saddr;
		__be32 oo = *outer;
		*outer = na[0];
		oip->check = csum_update(oip->check, &oo, 4, na, 4);
		/* quoted address and the quoted header's checksum */
		__be32 *inner = to_real ? &iip->saddr : &iip->daddr;
		oa[0] = *inner;
		*inner = na[0];
		__be32 oc = iip->check, nc;
		iip->check = csum_update(iip->check, oa, 4, na, 4);
		nc = iip->check;
		isum = bpf_csum_diff(oa, 4, na, 4, 0);
		isum = bpf_csum_diff(&oc, 4, &nc, 4, isum);
	} else {
		struct ipv6hdr *oip = data + sizeof(struct ethhdr);
		struct icmp6hdr *ic = data + off;
		struct ipv6hdr *iip = (void *)(ic + 1);
		iports = (void *)(iip + 1);
		if ((void *)(oip + 1) > data_end || (void *)(iports + 2) > data_end)
			return -1;
		icsum = &ic->icmp6_cksum;
		iproto = iip->nexthdr;
		if (iproto == IPPROTO_UDP && (void *)(iports + 4) <= data_end)
			iudp = iports + 3;
		/* the outer address is in the ICMPv6 pseudo header */
		struct in6_addr *outer = to_real ? &oip->daddr : &oip->saddr;
		__be32 oo[4];
		__builtin_memcpy(oo, outer, 16);
		__builtin_memcpy(outer, na, 16);
		isum = bpf_csum_diff(oo, 16, na, 16, 0);
		struct in6_addr *inner = to_real ? &iip->saddr : &iip->daddr;
		__builtin_memcpy(oa, inner, 16);
		__builtin_memcpy(inner, na, 16);
		isum = bpf_csum_diff(oa, 16, na, 16, isum);
	}
	/* quoted port (source when going to the real server) */
	__u16 *port = to_real ? &iports[0] : &iports[1];
	__be32 op = *port, np = nport;
	*port = nport;
	isum = bpf_csum_diff(&op, 4, &np, 4, isum);
	/* quoted UDP checksum, when quoted and in use */
	if (iudp && *iudp) {
		__be32 ou = *iudp, nu;
		__s64 us = bpf_csum_diff(oa, alen, na, alen, (__u16)~*iudp);
		us = bpf_csum_diff(&op, 4, &np, 4, us);
		__u16 c = csum_fold(us);
		*iudp = c ? c : 0xffff;
		nu = *iudp;
		isum = bpf_csum_diff(&ou, 4, &nu, 4, isum);
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if ((void *)(icsum + 1) > data_end)
		return -1;
	*icsum = csum_fold(isum + (__u16)~*icsum);
	return 0;
}

/* nat_forward rewrites the destination to the real server (address and
 * port) and sends the frame toward it. */
static __always_inline int nat_forward(struct xdp_md *ctx, const struct real *r, const struct flow_key *fk,
				       const struct pktinfo *pi)
{
	if (pi->related) {
		if (r->method != METHOD_NAT)
			return done(EXIT_PASS_ICMP, XDP_PASS);
		if (icmp_nat(ctx, fk->family, pi->l4off, 1, r->addr, r->port ? bpf_htons(r->port) : fk->dport))
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		__builtin_memcpy(eth->h_dest, r->dmac, 6);
		__builtin_memcpy(eth->h_source, r->smac, 6);
		return xmit(ctx, r, EXIT_TX_ICMP_RELATED, EXIT_REDIRECT_ICMP_RELATED);
	}
	if (r->family != fk->family)
		return done(EXIT_DROP_NO_DEST, XDP_DROP);
	/* port 0: keep the port the client asked for (multi-port services) */
	__u16 nport = r->port ? bpf_htons(r->port) : fk->dport;
	if (rewrite(ctx, fk->family, fk->proto, pi->l4off, 0, r->addr, nport))
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	int snat = r->method == METHOD_SNAT;
	if (snat) {
		if (!pi->c || !pi->c->snat)
			return done(EXIT_DROP_NO_DEST, XDP_DROP);
		if (rewrite(ctx, fk->family, fk->proto, pi->l4off, 1, pi->c->laddr, pi->c->lport))
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
	}
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, r->dmac, 6);
	__builtin_memcpy(eth->h_source, r->smac, 6);
	if (snat)
		return xmit(ctx, r, EXIT_TX_SNAT, EXIT_REDIRECT_SNAT);
	return xmit(ctx, r, EXIT_TX_NAT, EXIT_REDIRECT_NAT);
}

/* snat_bind picks a source address and port toward real server r for a
 * new connection and claims the reply key with BPF_NOEXIST, so no two
 * connections share one (source, port, real server, real port). */
static __always_inline int snat_bind(const struct config *gc, const struct real *r, const struct flow_key *fk,
				     struct conn *nc, struct nat_rev *nv)
{
	__u32 h = flow_hash(fk) ^ (__u32)bpf_ktime_get_coarse_ns();
	__u32 n = 0, base = 0;
	if (gc) {
		n = fk->family == FAM_V4 ? gc->pool4 : gc->pool6;
		base = fk->family == FAM_V4 ? 0 : SNAT_POOL_MAX;
	}
	if (n > SNAT_POOL_MAX)
		n = SNAT_POOL_MAX;
	struct flow_key rk = {.family = fk->family, .proto = fk->proto,
			      .sport = r->port ? bpf_htons(r->port) : fk->dport};
	__builtin_memcpy(rk.saddr, r->addr, 16);
	nv->snat = 1;
	nv->cport = fk->sport;
	__builtin_memcpy(nv->caddr, fk->saddr, 16);
#pragma clang loop unroll(disable)
	for (int i = 0; i < SNAT_TRIES; i++) {
		/* independent probes: a bijective mix of (hash, try) */
		__u32 x = h + i * 0x9e3779b9u;
		x ^= x >> 16;
		x *= 0x85ebca6b;
		x ^= x >> 13;
		x *= 0xc2b2ae35;
		x ^= x >> 16;
		if (n) {
			__u32 idx = base + (x >> 16) % n;
			struct pool_addr *pa = bpf_map_lookup_elem(&snat_pool, &idx);
			if (!pa)
				return -1;
			__builtin_memcpy(rk.daddr, pa->addr, 16);
		} else {
			__builtin_memcpy(rk.daddr, r->src, 16);
		}
		rk.dport = bpf_htons(1024 + (x % (65536 - 1024)));
		if (bpf_map_update_elem(&nat_tbl, &rk, nv, BPF_NOEXIST) == 0) {
			nc->snat = 1;
			nc->lport = rk.dport;
			__builtin_memcpy(nc->laddr, rk.daddr, 16);
			return 0;
		}
	}
	return -1;
}

/* route_reply sends a rewritten reply (source src) toward fk->daddr
 * with bpf_fib_lookup, or leaves it to the kernel's routing. */
static __always_inline int route_reply(struct xdp_md *ctx, const struct flow_key *fk, const __u8 *src,
				       const struct pktinfo *pi)
{
	struct bpf_fib_lookup p = {};
	p.l4_protocol = fk->proto;
	p.tot_len = pi->len;
	p.ifindex = ctx->ingress_ifindex;
	if (fk->family == FAM_V4) {
		p.family = AF_INET;
		__builtin_memcpy(&p.ipv4_src, src, 4);
		__builtin_memcpy(&p.ipv4_dst, fk->daddr, 4);
	} else {
		p.family = AF_INET6;
		__builtin_memcpy(p.ipv6_src, src, 16);
		__builtin_memcpy(p.ipv6_dst, fk->daddr, 16);
	}
	int rc = bpf_fib_lookup(ctx, &p, sizeof(p), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return done(EXIT_PASS_NAT_REPLY, XDP_PASS);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, p.dmac, 6);
	__builtin_memcpy(eth->h_source, p.smac, 6);
	if (p.ifindex == ctx->ingress_ifindex)
		return done(EXIT_TX_NAT_REPLY, XDP_TX);
	return done(EXIT_REDIRECT_NAT_REPLY, bpf_redirect(p.ifindex, 0));
}

/* nat_reply turns a real server's reply back into one from VIP:port and
 * routes it to the client (bpf_fib_lookup; the kernel when that fails). */
static __always_inline int nat_reply(struct xdp_md *ctx, struct flow_key *fk, const struct nat_rev *nr,
				     const struct pktinfo *pi)
{
	if (rewrite(ctx, fk->family, fk->proto, pi->l4off, 1, nr->vaddr, nr->vport))
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	if (nr->snat) {
		if (rewrite(ctx, fk->family, fk->proto, pi->l4off, 0, nr->caddr, nr->cport))
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		__builtin_memcpy(fk->daddr, nr->caddr, 16);
	}
	count_out(&stats_svc, nr->svc, pi->len);
	count_out(&stats_real, nr->real, pi->len);

	return route_reply(ctx, fk, nr->vaddr, pi);
}

#endif
