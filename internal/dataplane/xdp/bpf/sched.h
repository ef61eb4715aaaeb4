/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Hashing, persistence templates and scheduling-table lookups
 * (included by lb.c after the maps and counters). */
#ifndef GOVS_SCHED_H
#define GOVS_SCHED_H

static __always_inline __u32 fold_addr(const __u8 *a, __u8 family)
{
	__u32 w0, w1, w2, w3;
	__builtin_memcpy(&w0, a, 4);
	if (family == FAM_V4)
		return bpf_ntohl(w0);
	__builtin_memcpy(&w1, a + 4, 4);
	__builtin_memcpy(&w2, a + 8, 4);
	__builtin_memcpy(&w3, a + 12, 4);
	return bpf_ntohl(w0 ^ w1 ^ w2 ^ w3);
}

/* mix32 is the murmur3 finaliser: a bijection of 32 bits. */
static __always_inline __u32 mix32(__u32 x)
{
	x ^= x >> 16;
	x *= 0x85ebca6b;
	x ^= x >> 13;
	x *= 0xc2b2ae35;
	x ^= x >> 16;
	return x;
}

/* flow_hash mixes a flow into 32 bits for outer sources and IPv6 flow
 * labels (murmur3 finaliser). */
static __always_inline __u32 flow_hash(__u8 fam, const struct flow_key *fk)
{
	return mix32(fold_addr(fk->saddr, fam) ^ ((__u32)fk->sport << 16) ^ fk->dport);
}

static __always_inline void mask_addr(__u8 *a, __u32 plen, __u8 family)
{
	__u32 bits = family == FAM_V4 ? 32 : 128;
	if (plen > bits)
		plen = bits;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		__u32 lo = i * 8;
		if (plen >= lo + 8)
			continue;
		if (plen <= lo)
			a[i] = 0;
		else
			a[i] &= (__u8)(0xff << (8 - (plen - lo)));
	}
}

static __always_inline int real_ok(const struct real *r, __u32 svc)
{
	return r->gen != 0 && r->svc == svc;
}

static __always_inline __u64 rotl64(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl64(v1, 13);                                                               \
		v1 ^= v0;                                                                          \
		v0 = rotl64(v0, 32);                                                               \
		v2 += v3;                                                                          \
		v3 = rotl64(v3, 16);                                                               \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl64(v3, 21);                                                               \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl64(v1, 17);                                                               \
		v1 ^= v2;                                                                          \
		v2 = rotl64(v2, 32);                                                               \
	} while (0)

/* mh_hash is the kernel's hsiphash of one 32-bit word on 64-bit machines
 * (SipHash-1-3, truncated) with the fixed keys of ip_vs_mh.c, so slots
 * match internal/sched's mh and Linux IPVS. */
static __always_inline __u32 mh_hash(__u32 v)
{
	const __u64 k = 2654435761ull;
	__u64 v0 = 0x736f6d6570736575ull ^ k;
	__u64 v1 = 0x646f72616e646f6dull ^ k;
	__u64 v2 = 0x6c7967656e657261ull ^ k;
	__u64 v3 = 0x7465646279746573ull ^ k;
	__u64 b = (4ull << 56) | v;

	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return (__u32)(v0 ^ v1 ^ v2 ^ v3);
}

/* table_pick returns the real slot the scheduling table holds for a new
 * flow, 0 when none. */
static __always_inline __u32 table_pick(__u32 svc, const struct svc_cfg *cfg, __u8 fam, const struct flow_key *fk)
{
	__u32 slot;
	__u32 size = cfg->table_size;
	if (size == 0)
		return 0;
	if (cfg->mode == SCHED_CURSOR) {
		/* one cursor shared by all CPUs: the ring is walked in order,
		 * so rr and wrr are exact; the atomic add costs new flows only */
		__u32 *cur = bpf_map_lookup_elem(&cursors, &svc);
		if (!cur)
			return 0;
		slot = __sync_fetch_and_add(cur, 1) % size;
	} else {
		__u32 x;
		if (cfg->mode == SCHED_HASH_DST) {
			x = fold_addr(fk->daddr, fam);
		} else {
			x = fold_addr(fk->saddr, fam);
			if (cfg->flags & SVC_F_HASH_PORT)
				x += bpf_ntohs(fk->sport);
		}
		if (cfg->mode == SCHED_HASH_MH) {
			slot = mh_hash(x) % size;
		} else {
			__u32 h = x * GOLDEN_RATIO_32;
			if (cfg->hash_bits > 0 && cfg->hash_bits < 32)
				slot = h >> (32 - cfg->hash_bits);
			else
				slot = h % size;
		}
	}
	/* the loader keeps base + size inside the array; the map's bound
	 * check catches anything else */
	__u32 i = cfg->tbl_base + slot;
	__u32 *rid = bpf_map_lookup_elem(&sched_tbl, &i);
	return rid ? *rid : 0;
}

/* schedule chooses the real server for a new flow: persistence template,
 * then the scheduling table, then the sorry server. */
static __always_inline struct real *schedule(__u32 svc, const struct svc_cfg *cfg, __u8 fam, const struct flow_key *fk,
					     __u64 now, __u32 *rid_out)
{
	struct persist_key pk = {};
	struct real *r;
	__u32 rid;
	int persistent = cfg->flags & SVC_F_PERSIST;

	if (persistent) {
		pk.svc = svc;
		pk.family = fam;
		__builtin_memcpy(pk.addr, fk->saddr, 16);
		mask_addr(pk.addr, cfg->persist_mask, fam);
		struct persist_val *pv = bpf_map_lookup_elem(&persist_tbl, &pk);
		if (pv && elapsed(now, pv->last_ns) < (__u64)cfg->persist_timeout * 1000000000ull) {
			rid = pv->real;
			r = real_of(rid);
			if (r && real_ok(r, svc) && r->gen == pv->gen) {
				pv->last_ns = now;
				event(EV_PERSIST_HIT);
				*rid_out = rid;
				return r;
			}
		}
	}
	rid = table_pick(svc, cfg, fam, fk);
	r = rid ? real_of(rid) : NULL;
	if (!r || !real_ok(r, svc)) {
		rid = cfg->sorry_real;
		if (!rid)
			return NULL;
		r = real_of(rid);
		if (!r || !real_ok(r, svc))
			return NULL;
		event(EV_SORRY);
	}
	if (persistent) {
		struct persist_val nv = {.last_ns = now, .real = rid, .gen = r->gen};
		bpf_map_update_elem(&persist_tbl, &pk, &nv, BPF_ANY);
	}
	*rid_out = rid;
	return r;
}

#endif
