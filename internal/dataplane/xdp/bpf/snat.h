/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Source NAT binding: a (source address, port) toward the real server
 * for each new connection (included by lb.c after conn_find). */
#ifndef GOVS_SNAT_H
#define GOVS_SNAT_H

/* same16 compares two 16-byte addresses (4-byte aligned). */
static __always_inline int same16(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const void *)a, *y = (const void *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* snat_stale reports whether the binding rk, held by nr and claimed at
 * seen, may be taken over. Never before the shortest life a connection
 * of its protocol can have (UDP: the UDP timeout; TCP: the CLOSE or
 * FIN_WAIT timeout, whichever is shorter) nor within SNAT_GUARD_NS of
 * its claim: a binding that young cannot belong to an expired
 * connection, and no connection lookup is spent on it. Older, it is
 * stale when its real server slot was reused, or its connection (client
 * → virtual, looked up in the connection table) is gone, has expired, or
 * holds another binding. NAT entries (no source rewrite) are never
 * taken. */
static __always_inline int snat_stale(const struct config *gc, const struct nat_rev *nr, __u8 fam, const struct flow_key *rk,
				      __u64 seen, __u64 now)
{
	__u64 age = elapsed(now, seen);
	__u64 life = timeout_of(gc, ST_UDP);
	if (rk->proto != IPPROTO_UDP) {
		life = timeout_of(gc, ST_CLOSE);
		if (timeout_of(gc, ST_FIN_WAIT) < life)
			life = timeout_of(gc, ST_FIN_WAIT);
	}
	if (age < SNAT_GUARD_NS || age < life || !nr->snat)
		return 0;
	__u32 rid = nr->real;
	struct real *r = real_of(rid);
	if (!r || r->gen == 0 || r->gen != nr->gen)
		return 1;
	struct flow_key ok = {.family = fam, .proto = rk->proto, .sport = nr->cport, .dport = nr->vport};
	__builtin_memcpy(ok.saddr, nr->caddr, 16);
	__builtin_memcpy(ok.daddr, nr->vaddr, 16);
	struct conn *c = conn_find(fam, &ok);
	if (!c || elapsed(now, c->last_ns) >= timeout_of(gc, c->state))
		return 1;
	return !c->snat || c->lport != rk->dport || !same16(c->laddr, rk->daddr) || c->gen != nr->gen ||
	       c->real != nr->real;
}

/* snat_bind picks a source address and port toward real server r for a
 * new connection of service svc: up to SNAT_TRIES random (address,
 * port) pairs from the service's pool and port range. A pair is free
 * when its reply key (real server, real port, address, port) is not in
 * nat_tbl — looked up first, then claimed with BPF_NOEXIST, because an
 * LRU update allocates (and, when full, evicts another entry) before it
 * finds the key taken — or when snat_stale says its holder is dead, in
 * which case it is taken over with a compare-and-swap of the claim time,
 * so two CPUs never both win it, and the binding's reply copies are freed
 * on every CPU. */
static __always_inline int snat_bind(const struct config *gc, const struct svc_cfg *cfg, __u32 svc,
				     const struct real *r, __u8 fam, const struct flow_key *fk, __u64 now, struct conn *nc,
				     struct nat_rev *nv)
{
	__u32 h = flow_hash(fam, fk) ^ bpf_get_prandom_u32();
	__u32 n = cfg->pool_len, base = cfg->pool_base;
	__u32 pmin = cfg->port_min, span = (__u32)cfg->port_max - pmin + 1;
	if (pmin == 0 || cfg->port_max < pmin) {
		pmin = 1024;
		span = 65536 - 1024;
	}
	struct flow_key rk = {.family = fam, .proto = fk->proto,
			      .sport = r->port ? bpf_htons(r->port) : fk->dport};
	__builtin_memcpy(rk.saddr, r->addr, 16);
	nv->ns = now;
	nv->snat = 1;
	nv->cport = fk->sport;
	__builtin_memcpy(nv->caddr, fk->saddr, 16);
	int bound = 0;
#pragma clang loop unroll(disable)
	for (int i = 0; i < SNAT_TRIES; i++) {
		/* independent probes: a bijective mix of (hash, try) */
		__u32 x = mix32(h + i * 0x9e3779b9u);
		if (n) {
			__u32 idx = base + mix32(x ^ 0x5bd1e995u) % n;
			struct pool_addr *pa = bpf_map_lookup_elem(&snat_pool, &idx);
			if (!pa)
				break;
			__builtin_memcpy(rk.daddr, pa->addr, 16);
		} else {
			__builtin_memcpy(rk.daddr, r->src, 16);
		}
		rk.dport = bpf_htons(pmin + x % span);
		struct nat_rev *cur = bpf_map_lookup_elem(&nat_tbl, &rk);
		if (!cur) {
			if (bpf_map_update_elem(&nat_tbl, &rk, nv, BPF_NOEXIST) == 0) {
				bound = 1;
				break;
			}
			continue; /* another CPU took it just now */
		}
		__u64 seen = *(volatile __u64 *)&cur->ns;
		if (!snat_stale(gc, cur, fam, &rk, seen, now))
			continue;
		__u64 claim = now != seen ? now : now + 1;
		if (__sync_val_compare_and_swap(&cur->ns, seen, claim) != seen)
			continue;
		__builtin_memcpy(cur->vaddr, nv->vaddr, 16);
		__builtin_memcpy(cur->caddr, nv->caddr, 16);
		cur->vport = nv->vport;
		cur->cport = nv->cport;
		cur->svc = nv->svc;
		cur->real = nv->real;
		cur->gen = nv->gen;
		cur->snat = 1;
		/* the old holder's reply copies would send the new one's
		 * replies to the old client for up to their window: its
		 * connection can have left a full table while its replies
		 * still came */
		sweep_key(fam, &rk);
		bound = 1;
		break;
	}
	if (!bound) {
		__u64 *f = bpf_map_lookup_elem(&snat_fail, &svc);
		if (f)
			*f += 1;
		return -1;
	}
	nc->snat = 1;
	nc->lport = rk.dport;
	__builtin_memcpy(nc->laddr, rk.daddr, 16);
	return 0;
}

#endif
