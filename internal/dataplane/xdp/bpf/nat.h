/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* NAT and source NAT: address/port rewriting with incremental checksums,
 * source binding, and replies (included by lb.c). */
#ifndef GOVS_NAT_H
#define GOVS_NAT_H

#define AF_INET 2
#define AF_INET6 10

/* csum_add32 adds two partial checksums (end-around carry). */
static __always_inline __u32 csum_add32(__u32 a, __u32 b)
{
	__u64 s = (__u64)a + b;
	return (__u32)((s & 0xffffffff) + (s >> 32));
}

/* csum_swap returns the partial checksum sum after the 32-bit word from
 * of the summed data became to (RFC 1624, eqn. 3: add ~from and to), the
 * sum the bpf_csum_diff helper computes, inline: on these paths the
 * helper call (with its return thunk) cost more than the arithmetic. */
static __always_inline __u32 csum_swap(__u32 sum, __u32 from, __u32 to)
{
	return csum_add32(csum_add32(sum, ~from), to);
}

/* put4, put16 and put_port store a new IPv4 address, IPv6 address or
 * port in the packet and return seed plus the change of the sum. */
static __always_inline __u32 put4(__be32 *p, const __u8 *na, __u32 seed)
{
	__be32 o = *p, n;
	__builtin_memcpy(&n, na, 4);
	*p = n;
	return csum_swap(seed, o, n);
}

static __always_inline __u32 put16(struct in6_addr *p, const __u8 *na, __u32 seed)
{
	__be32 o[4], n[4];
	__builtin_memcpy(o, p, 16);
	__builtin_memcpy(n, na, 16);
	__builtin_memcpy(p, n, 16);
#pragma unroll
	for (int i = 0; i < 4; i++)
		seed = csum_swap(seed, o[i], n[i]);
	return seed;
}

static __always_inline __u32 put_port(__u16 *p, __u16 np, __u32 seed)
{
	__be32 o = *p, n = np;
	*p = np;
	return csum_swap(seed, o, n);
}

/* rewrite changes the packet's destination address and port to da:dp
 * when da is not NULL, and its source to sa:sp when sa is not NULL, and
 * updates the IPv4 header and TCP/UDP checksums once for both: the
 * change of the addresses is summed once and applied to the IPv4
 * header and, with the ports', to the TCP/UDP checksum. */
static __always_inline int rewrite(struct xdp_md *ctx, __u8 family, __u8 proto, __u32 l4off, const __u8 *sa,
				   __u16 sp, const __u8 *da, __u16 dp)
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
	__u32 asum = 0; /* change of the addresses, then of the ports too */

	if (family == FAM_V4) {
		struct iphdr *iph = data + sizeof(struct ethhdr);
		if ((void *)(iph + 1) > data_end)
			return -1;
		if (da)
			asum = put4(&iph->daddr, da, asum);
		if (sa)
			asum = put4(&iph->saddr, sa, asum);
		iph->check = csum_fold(csum_add32((__u16)~iph->check, asum));
	} else {
		struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
		if ((void *)(ip6 + 1) > data_end)
			return -1;
		if (da)
			asum = put16(&ip6->daddr, da, asum);
		if (sa)
			asum = put16(&ip6->saddr, sa, asum);
	}
	if (da)
		asum = put_port(&l4[1], dp, asum);
	if (sa)
		asum = put_port(&l4[0], sp, asum);
	/* a UDP checksum of 0 means none (IPv4; IPv6 tunnels, RFC 6935):
	 * it stays none */
	if (!(proto == IPPROTO_UDP && *csum == 0)) {
		__u16 c = csum_fold(csum_add32((__u16)~*csum, asum));
		if (proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*csum = c;
	}
	return 0;
}

/* ICMP error translation: what icmp_xlate replaces. */
#define X_OSRC 1 /* outer source address */
#define X_ODST 2 /* outer destination address */
#define X_QSRC 4 /* quoted source address and port */
#define X_QDST 8 /* quoted destination address and port */

struct xlate {
	__u8 osrc[16];
	__u8 odst[16];
	__u8 qsrc[16];
	__u8 qdst[16];
	__u16 qsport; /* network order */
	__u16 qdport;
};

/* quoted_csum points at the checksum of the UDP or TCP header an ICMP
 * error quotes at ports, or is NULL when the quote is too short to hold
 * it. */
static __always_inline __u16 *quoted_csum(__u8 proto, __u16 *ports, void *data_end)
{
	if (proto == IPPROTO_UDP && (void *)(ports + 4) <= data_end)
		return ports + 3;
	if (proto == IPPROTO_TCP && (void *)(ports + 9) <= data_end)
		return ports + 8;
	return NULL;
}

/* icmp_xlate translates an ICMP error about a NAT or SNAT flow: it
 * replaces the outer and quoted addresses (and quoted ports) named by
 * what with those of x and updates, incrementally, the outer IPv4 header
 * checksum, the quoted IPv4 header checksum, the quoted UDP or TCP
 * checksum when it is quoted (a UDP checksum of 0 stays 0), and the
 * ICMP checksum (for ICMPv6 its pseudo header holds the outer
 * addresses). The quoted IPv4 header has no options (handle_v4). */
static __always_inline int icmp_xlate(struct xdp_md *ctx, __u8 family, __u32 l4off, __u32 what,
				      const struct xlate *x)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 off = l4off & 0x7f;
	__u16 *icsum, *iports, *qcsum = NULL;
	__u8 iproto;
	__u32 isum = 0; /* change of what the ICMP checksum covers */
	__u32 qsum = 0; /* change of the quoted addresses */

	if (family == FAM_V4) {
		struct iphdr *oip = data + sizeof(struct ethhdr);
		struct icmphdr *ic = data + off;
		struct iphdr *iip = (void *)(ic + 1);
		iports = (void *)(iip + 1);
		if ((void *)(oip + 1) > data_end || (void *)(iports + 2) > data_end)
			return -1;
		icsum = &ic->checksum;
		iproto = iip->protocol;
		qcsum = quoted_csum(iproto, iports, data_end);
		if (what & (X_OSRC | X_ODST)) {
			__u32 osum = 0;
			if (what & X_OSRC)
				osum = put4(&oip->saddr, x->osrc, osum);
			if (what & X_ODST)
				osum = put4(&oip->daddr, x->odst, osum);
			oip->check = csum_fold((__u64)osum + (__u16)~oip->check);
		}
		if (what & X_QSRC)
			qsum = put4(&iip->saddr, x->qsrc, qsum);
		if (what & X_QDST)
			qsum = put4(&iip->daddr, x->qdst, qsum);
		__be32 oc = iip->check, nc;
		iip->check = csum_fold((__u64)qsum + (__u16)~iip->check);
		nc = iip->check;
		isum = csum_swap(qsum, oc, nc);
	} else {
		struct ipv6hdr *oip = data + sizeof(struct ethhdr);
		struct icmp6hdr *ic = data + off;
		struct ipv6hdr *iip = (void *)(ic + 1);
		iports = (void *)(iip + 1);
		if ((void *)(oip + 1) > data_end || (void *)(iports + 2) > data_end)
			return -1;
		icsum = &ic->icmp6_cksum;
		iproto = iip->nexthdr;
		qcsum = quoted_csum(iproto, iports, data_end);
		/* the outer addresses are in the ICMPv6 pseudo header */
		if (what & X_OSRC)
			isum = put16(&oip->saddr, x->osrc, isum);
		if (what & X_ODST)
			isum = put16(&oip->daddr, x->odst, isum);
		if (what & X_QSRC)
			qsum = put16(&iip->saddr, x->qsrc, qsum);
		if (what & X_QDST)
			qsum = put16(&iip->daddr, x->qdst, qsum);
		isum = csum_add32(isum, qsum);
	}
	__u32 psum = 0;
	if (what & X_QSRC)
		psum = put_port(&iports[0], x->qsport, psum);
	if (what & X_QDST)
		psum = put_port(&iports[1], x->qdport, psum);
	isum = csum_add32(isum, psum);
	/* the quoted transport checksum covers the quoted addresses (pseudo
	 * header) and ports */
	if (qcsum && !(iproto == IPPROTO_UDP && *qcsum == 0)) {
		__be32 ou = *qcsum, nu;
		__u16 c = csum_fold((__u64)csum_add32(qsum, psum) + (__u16)~*qcsum);
		if (iproto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*qcsum = c;
		nu = c;
		isum = csum_swap(isum, ou, nu);
	}
	*icsum = csum_fold((__u64)isum + (__u16)~*icsum);
	return 0;
}

/* nat_forward rewrites the destination to the real server (address and
 * port) and sends the frame toward it. */
static __always_inline int nat_forward(struct xdp_md *ctx, const struct real *r, const struct flow_key *fk,
				       const struct pktinfo *pi)
{
	if (pi->related) {
		/* an error about a reply VIP:vport -> client:cport: the real
		 * server gets it about its own packet, real:rport -> client (NAT)
		 * or laddr:lport (SNAT), from the client (NAT) or laddr (SNAT) */
		struct xlate x = {.qsport = r->port ? bpf_htons(r->port) : fk->dport};
		__builtin_memcpy(x.odst, r->addr, 16);
		__builtin_memcpy(x.qsrc, r->addr, 16);
		int rc;
		if (r->method == METHOD_NAT) {
			rc = icmp_xlate(ctx, pi->fam, pi->l4off, X_ODST | X_QSRC, &x);
		} else if (r->method == METHOD_SNAT && pi->c && pi->c->snat) {
			__builtin_memcpy(x.osrc, pi->c->laddr, 16);
			__builtin_memcpy(x.qdst, pi->c->laddr, 16);
			x.qdport = pi->c->lport;
			rc = icmp_xlate(ctx, pi->fam, pi->l4off, X_OSRC | X_ODST | X_QSRC | X_QDST, &x);
		} else {
			return done(EXIT_PASS_ICMP, XDP_PASS);
		}
		if (rc)
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
	if (r->family != pi->fam)
		return done(EXIT_DROP_NO_DEST, XDP_DROP);
	/* port 0: keep the port the client asked for (multi-port services) */
	__u16 nport = r->port ? bpf_htons(r->port) : fk->dport;
	int snat = r->method == METHOD_SNAT;
	const __u8 *sa = NULL;
	__u16 sp = 0;
	if (snat) {
		if (!pi->c || !pi->c->snat)
			return done(EXIT_DROP_NO_DEST, XDP_DROP);
		sa = pi->c->laddr;
		sp = pi->c->lport;
	}
	if (rewrite(ctx, pi->fam, fk->proto, pi->l4off, sa, sp, r->addr, nport))
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
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

/* reply_out sends a translated reply to next hop dmac through ifindex
 * (source smac): back out with XDP_TX when it is the ingress interface.
 * sole, when not 0, is the one interface the program is attached to
 * (a real server's with REAL_F_TX), where every packet comes in. */
static __always_inline int reply_out(struct xdp_md *ctx, const __u8 *dmac, const __u8 *smac, __u32 ifindex,
				     __u32 sole)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	__builtin_memcpy(eth->h_dest, dmac, 6);
	__builtin_memcpy(eth->h_source, smac, 6);
	if (sole ? ifindex == sole : ifindex == ctx->ingress_ifindex)
		return done(EXIT_TX_NAT_REPLY, XDP_TX);
	return done(EXIT_REDIRECT_NAT_REPLY, bpf_redirect(ifindex, 0));
}

/* fib_reply looks up the route of a reply (source src) toward
 * fk->daddr for a packet of len bytes into p. */
static __always_inline int fib_reply(struct xdp_md *ctx, const struct flow_key *fk, const __u8 *src, __u8 fam,
				     __u32 len, struct bpf_fib_lookup *p)
{
	__builtin_memset(p, 0, sizeof(*p));
	p->l4_protocol = fk->proto;
	p->tot_len = len;
	p->ifindex = ctx->ingress_ifindex;
	if (fam == FAM_V4) {
		p->family = AF_INET;
		__builtin_memcpy(&p->ipv4_src, src, 4);
		__builtin_memcpy(&p->ipv4_dst, fk->daddr, 4);
	} else {
		p->family = AF_INET6;
		__builtin_memcpy(p->ipv6_src, src, 16);
		__builtin_memcpy(p->ipv6_dst, fk->daddr, 16);
	}
	return bpf_fib_lookup(ctx, p, sizeof(*p), 0);
}

/* route_reply sends a rewritten reply (source src) toward fk->daddr
 * with bpf_fib_lookup, or leaves it to the kernel's routing. With h,
 * the route also goes there, for a flow cache copy, looked up for
 * FC_ROUTE_LEN bytes when the packet is shorter (the lookup reports no
 * MTU on success), or for the path's MTU when that is smaller: the
 * flow's later packets up to that length are sent from the copy. */
#define FC_ROUTE_LEN 1500
static __always_inline int route_reply(struct xdp_md *ctx, const struct flow_key *fk, const __u8 *src,
				       const struct pktinfo *pi, struct fc_nat_head *h)
{
	struct bpf_fib_lookup p;
	__u32 len = pi->len;
	if (h && len < FC_ROUTE_LEN)
		len = FC_ROUTE_LEN;
	int rc = fib_reply(ctx, fk, src, pi->fam, len, &p);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED && len != pi->len && p.mtu_result >= pi->len) {
		len = p.mtu_result; /* a smaller MTU on the way, which the packet fits */
		rc = fib_reply(ctx, fk, src, pi->fam, len, &p);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return done(EXIT_PASS_NAT_REPLY, XDP_PASS);
	if (h) {
		__builtin_memcpy(h->dmac, p.dmac, 6);
		__builtin_memcpy(h->smac, p.smac, 6);
		h->ifindex = p.ifindex;
		h->max_len = len;
	}
	return reply_out(ctx, p.dmac, p.smac, p.ifindex, 0);
}

/* nat_reply turns a real server's reply back into one from VIP:port and
 * routes it to the client (bpf_fib_lookup; the kernel when that fails). */
static __always_inline int nat_reply(struct xdp_md *ctx, struct flow_key *fk, const struct nat_rev *nr,
				     const struct pktinfo *pi, struct fc_nat_head *h)
{
	if (rewrite(ctx, pi->fam, fk->proto, pi->l4off, nr->vaddr, nr->vport, nr->snat ? nr->caddr : NULL,
		    nr->cport))
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	if (nr->snat)
		__builtin_memcpy(fk->daddr, nr->caddr, 16);
	count_out(nr->real, pi->len);

	return route_reply(ctx, fk, nr->vaddr, pi, h);
}

#endif
