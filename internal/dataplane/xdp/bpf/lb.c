// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* govs XDP director: service lookup, connection tracking, scheduling
 * through tables the Go side computes, and forwarding by direct routing
 * (destination MAC rewrite) or IP-in-IP / IP6-in-IP6 tunnelling.
 * Traffic that is not for a virtual service, and fragments, go to the
 * kernel untouched. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb.h"

/* linux/icmp.h pulls in libc socket headers; the few ICMPv4 definitions
 * needed here are spelled out instead. */
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define ICMP_FRAG_NEEDED 4
struct icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	union {
		struct {
			__be16 id;
			__be16 sequence;
		} echo;
		__be32 gateway;
		struct {
			__be16 __unused;
			__be16 mtu;
		} frag;
	} un;
};

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "maps.h"

/* Make the enums and structs visible to bpf2go -type. */
const enum exit_reason *unused_exit __attribute__((unused));
const enum event *unused_event __attribute__((unused));
const enum conn_state *unused_state __attribute__((unused));
const enum sched_mode *unused_mode __attribute__((unused));

#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define IP_DF 0x4000
#define GOLDEN_RATIO_32 0x61C88647u
#define TTL_OUT 64

/* cpu_slot is key's index in this CPU's block of a map that holds a
 * block of stride entries per CPU (cpu_data, flow_cache). */
static __always_inline __u32 cpu_slot(__u32 stride, __u32 key)
{
	return bpf_get_smp_processor_id() * stride + key;
}

/* cpu_entry is entry i of this CPU's block of cpu_data. */
static __always_inline union cd_entry *cpu_entry(__u32 i)
{
	__u32 k = cpu_slot(CD_ENTRIES, i);
	return bpf_map_lookup_elem(&cpu_data, &k);
}

static __always_inline int done(__u32 reason, int verdict)
{
	union cd_entry *e = cpu_entry(CD_EXITS + reason / 16);
	if (e)
		e->w[reason % 16] += 1;
	return verdict;
}

static __always_inline void event(__u32 ev)
{
	union cd_entry *e = cpu_entry(CD_EVENTS + ev / 16);
	if (e)
		e->w[ev % 16] += 1;
}

/* real_of is real server id's entry (this CPU's copy); every slot below
 * MAX_REALS exists, a removed server's has gen 0. */
static __always_inline struct real *real_of(__u32 id)
{
	if (id >= MAX_REALS) /* the next CPU's block */
		return NULL;
	union cd_entry *e = cpu_entry(CD_REALS + id);
	return e ? &e->rs.real : NULL;
}

/* count_r adds a packet to the per-CPU counters beside r, an entry
 * real_of returned, count_out and count_out_r a reply to real server
 * id's or r's. Service
 * counters are not kept per packet: the loader sums its real servers
 * (stats_svc holds what removed real servers had counted), which saves a
 * cache line on every packet. */
static __always_inline struct counters *real_counters(__u32 id)
{
	if (id >= MAX_REALS)
		return NULL;
	union cd_entry *e = cpu_entry(CD_REALS + id);
	return e ? &e->rs.ctr : NULL;
}

static __always_inline void count_at(struct counters *c, __u64 conns, __u64 bytes)
{
	if (!c)
		return;
	c->conns += conns;
	c->pkts += 1;
	c->bytes += bytes;
}

static __always_inline void count_out_at(struct counters *c, __u64 bytes)
{
	if (!c)
		return;
	c->out_pkts += 1;
	c->out_bytes += bytes;
}

static __always_inline void count_r(const struct real *r, __u64 conns, __u64 bytes)
{
	count_at(&((struct cd_real *)r)->ctr, conns, bytes);
}

static __always_inline void count_out(__u32 id, __u64 bytes)
{
	count_out_at(real_counters(id), bytes);
}

static __always_inline void count_out_r(const struct real *r, __u64 bytes)
{
	count_out_at(&((struct cd_real *)r)->ctr, bytes);
}

/* elapsed is now - last, or 0 when last is ahead of now: the program's
 * jiffies clock (now_ns) may trail CLOCK_MONOTONIC_COARSE, which the Go
 * side stamps templates with, by up to a tick, and a clock retune may
 * move it back by a few ticks. A stamp from the future is fresh. */
static __always_inline __u64 elapsed(__u64 now, __u64 last)
{
	return now > last ? now - last : 0;
}

#include "sched.h"
#include "encap.h"

struct pktinfo {
	__u32 len;     /* IP length (header + payload) */
	__u16 df;      /* IP_DF in network order, or 0 */
	__u8 tos;
	__u8 related;  /* an ICMP error following its flow */
	__u8 fam;      /* FAM_V4 or FAM_V6, a constant in each copy of the path */
	__u32 l4off;   /* offset of the TCP/UDP header from the frame start */
	const struct conn *c; /* the connection (SNAT reads its source) */
};

#include "nat.h"

/* toobig answers a packet that does not fit the path to its real server
 * (mtu: the IP bytes that do): ICMP fragmentation-needed or
 * packet-too-big back to its source when it may not be fragmented (IPv4
 * DF, IPv6), else a drop (XDP cannot fragment), as IPVS does. */
static __always_inline int toobig(struct xdp_md *ctx, const struct pktinfo *pi, __u32 mtu)
{
	if (pi->related)
		return done(EXIT_DROP_TOOBIG, XDP_DROP);
	if (pi->fam == FAM_V4) {
		if (!pi->df)
			return done(EXIT_DROP_TOOBIG, XDP_DROP);
		return send_toobig4(ctx, mtu);
	}
	if (mtu < 1280)
		mtu = 1280;
	return send_toobig6(ctx, mtu);
}

/* forward sends the packet to real server r by its method. r->mtu is
 * the path's MTU toward it (route or interface, 0 unknown): a packet the
 * egress cannot take would be dropped silently by the redirect. */
static __always_inline int forward(struct xdp_md *ctx, const struct real *r, const struct flow_key *fk,
				   const struct pktinfo *pi)
{
	if (!r->valid)
		return done(EXIT_DROP_NO_NEIGH, XDP_DROP);
	__u32 overhead = 0;
	if (r->method == METHOD_TUN)
		overhead = r->family == FAM_V4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	if (r->mtu && pi->len + overhead > r->mtu)
		return toobig(ctx, pi, r->mtu - overhead);
	if (r->method == METHOD_DR) {
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		__builtin_memcpy(eth->h_dest, r->dmac, 6);
		__builtin_memcpy(eth->h_source, r->smac, 6);
		if (pi->related)
			return xmit(ctx, r, EXIT_TX_ICMP_RELATED, EXIT_REDIRECT_ICMP_RELATED);
		return xmit(ctx, r, EXIT_TX_DR, EXIT_REDIRECT_DR);
	}
	if (r->method == METHOD_NAT || r->method == METHOD_SNAT)
		return nat_forward(ctx, r, fk, pi);
	if (r->method != METHOD_TUN)
		return done(EXIT_PASS_NAT_METHOD, XDP_PASS);

	__u32 zero = 0;
	struct config *cfg = bpf_map_lookup_elem(&settings, &zero);
	__u8 inner = pi->fam == FAM_V4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	if (pi->related)
		return encap(ctx, r, cfg, fk, inner, pi->tos, pi->df, pi->len, EXIT_TX_ICMP_RELATED,
			     EXIT_REDIRECT_ICMP_RELATED);
	return encap(ctx, r, cfg, fk, inner, pi->tos, pi->df, pi->len, EXIT_TX_TUN, EXIT_REDIRECT_TUN);
}

/* conn_find and conn_store keep IPv4 connections in conn4_tbl under a
 * 16-byte key and IPv6 ones in conn_tbl. */
static __always_inline struct flow_key4 key4(const struct flow_key *fk)
{
	struct flow_key4 k = {.sport = fk->sport, .dport = fk->dport, .proto = fk->proto};
	__builtin_memcpy(k.saddr, fk->saddr, 4);
	__builtin_memcpy(k.daddr, fk->daddr, 4);
	return k;
}

static __always_inline struct conn *conn_find(__u8 fam, const struct flow_key *fk)
{
	if (fam == FAM_V4) {
		struct flow_key4 k = key4(fk);
		return bpf_map_lookup_elem(&conn4_tbl, &k);
	}
	return bpf_map_lookup_elem(&conn_tbl, fk);
}

static __always_inline void conn_store(__u8 fam, const struct flow_key *fk, const struct conn *c)
{
	if (fam == FAM_V4) {
		struct flow_key4 k = key4(fk);
		bpf_map_update_elem(&conn4_tbl, &k, c, BPF_ANY);
		return;
	}
	bpf_map_update_elem(&conn_tbl, fk, c, BPF_ANY);
}

/* conn_real returns the real server of connection c, or NULL when its
 * slot no longer holds the generation and service c was made with: a
 * real server's generation is unique and zeroed on removal, so a match
 * proves service and server still exist. */
static __always_inline struct real *conn_real(const struct conn *c)
{
	__u32 rid = c->real;
	struct real *r = real_of(rid);
	if (!r || r->gen == 0 || r->gen != c->gen || r->svc != c->svc)
		return NULL;
	return r;
}

/* reply_port says whether a NAT reply can come from this source port
 * (network order). */
static __always_inline int reply_port(__u16 port)
{
	__u32 p = bpf_ntohs(port);
	__u32 w = p >> 6;
	__u64 *m = bpf_map_lookup_elem(&reply_ports, &w);
	return m && ((*m >> (p & 63)) & 1);
}

/* now_ns is the coarse monotonic clock in ns: from jiffies (j, read
 * by the caller) when the loader has calibrated the conversion, else
 * from the helper. */
static __always_inline __u64 now_ns(const struct config *gc, __u64 j)
{
	if (gc && gc->clk_mult)
		return j * gc->clk_mult + gc->clk_off;
	return bpf_ktime_get_coarse_ns();
}

static __always_inline __u64 timeout_of(const struct config *cfg, __u8 state)
{
	if (!cfg || state >= ST_MAX)
		return 0;
	return cfg->timeout_ns[state];
}

/* The flow cache: an IPv4 connection's entry of conn4_tbl, copied into a
 * per-CPU slot when the program reads or makes it (and a NAT reply's
 * translation and route: fc_nat, nat_reply_fill; IPv6 connections of
 * conn_tbl have a cache of their own, flow_cache6). A packet that finds
 * its flow there, in a state no packet of its kind changes (UDP; TCP
 * established without SYN, FIN or RST), skips the conn4_tbl lookup: a
 * hash bucket and an element among millions, both usually cold, where
 * a hit reads one cache line. The size (FC_SLOTS, 2,048 slots and
 * 128 KiB per CPU) weighs the pages a few hot flows are spread over
 * against the flows a CPU serves at once: with 4,096 one-line slots the
 * 64 hot flows of the harness's cost load sat in 64 pages and the
 * slot's line took a quarter to 40 % of the program's samples in place,
 * and 512 slots (8 pages) lowered them by a sixth; but 1,000 flows sent
 * round robin hit 512 slots on about one packet in five (two flows per
 * set at most, four on average; simulated), 2,048 on nine in ten,
 * which took the program's time in place from about 100 ns to 55
 * (docs/BENCHMARKS.md).
 * Two ways per set keep two flows whose hashes meet from evicting each
 * other on every packet, and fc_admit three or more from evicting each
 * other's copies in turn. The real server is
 * still read from cpu_data and checked as for a table entry. The
 * entry's last-use time is the table entry's, refreshed through the
 * table at least every FC_WINDOW_NS (a quarter of the timeout when that
 * is shorter; fc_fill turns it into the entry's end, so a changed
 * timeout applies to an entry from its next fill): an idle connection
 * may expire that much before its timeout, and the daemon, which
 * deletes entries only past their timeout, never deletes one a slot
 * still serves. Slots are per CPU:
 * when a TCP connection is closed and reopened on the same addresses
 * and ports within FC_WINDOW_NS (after an RST, or a close by the
 * server, the client's port can be reused at once), the packets of the
 * new one would meet another CPU's slot still holding the old one. A
 * NIC's RSS keeps a flow on one CPU, where the close itself frees the
 * slot; where packets come through any CPU (veth, tun) the close
 * frees the flow's slots on every CPU (fc_sweep4). Also, the table
 * element c points
 * to can be freed and reused by another CPU while this one reads it (a
 * race of the LRU table, full); the copy then carries the other flow's
 * entry for up to the window instead of one packet. */
/* The cache works on a key as 64-bit words built in registers from
 * loads of the sizes the key's fields were stored with: a word loaded
 * from a key written field by field waits for the stores to retire (a
 * load that needs bytes of several stores is not forwarded from them),
 * which took a fifth of a hit's time in BPF_PROG_TEST_RUN.
 * key4_words gives flow_key4's two words. */
static __always_inline void key4_words(const struct flow_key *fk, __u64 w[2])
{
	__u32 s, d;
	__builtin_memcpy(&s, fk->saddr, 4);
	__builtin_memcpy(&d, fk->daddr, 4);
	w[0] = (__u64)s | (__u64)d << 32;
	w[1] = (__u64)fk->sport | (__u64)fk->dport << 16 | (__u64)fk->proto << 32;
}

/* fc_set returns the index of the first entry of key k's set on this
 * CPU. */
static __always_inline __u32 fc_set(const __u64 *k)
{
	/* multiply-shift over the key's 64-bit halves (addresses; ports
	 * and protocol), the two products side by side: a product's top
	 * bits depend on every bit of its factor, and a collision only
	 * costs a miss */
	__u64 h = k[0] * 0x9e3779b97f4a7c15ull ^ k[1] * 0xc2b2ae3d27d4eb4full;
	return cpu_slot(FC_SLOTS, (__u32)(h >> (64 - FC_SETS_LOG2)) * FC_WAYS);
}

static __always_inline int fc_same(const struct fc_entry *fe, const __u64 *k)
{
	__u64 a[2];
	__builtin_memcpy(a, &fe->key, sizeof(a));
	return a[0] == k[0] && a[1] == k[1];
}

/* fc_hit says whether fe serves a packet of flow k at jiffies j: as a
 * connection (FC_HIT_CONN), as a NAT reply (FC_HIT_REPLY: replies never
 * change a state, whatever their flags), or not (0). */
#define FC_HIT_CONN 1
#define FC_HIT_REPLY 2
static __always_inline int fc_hit(const struct fc_entry *fe, const __u64 *k, __u64 j, int is_tcp,
				  __u8 tcpflags)
{
	if (!fe || !fc_same(fe, k) || j >= fe->until)
		return 0;
	__u8 st = fe->c.state;
	if (st == FC_NAT_REPLY)
		return FC_HIT_REPLY;
	if (is_tcp ? st != ST_ESTABLISHED || (tcpflags & 0x07) : st != ST_UDP)
		return 0;
	return FC_HIT_CONN;
}

/* fc_admit says whether a flow (kw, a word of its key) not in its set
 * may take an entry whose window is still open, when both are: one flow
 * in eight per jiffy j, by a hash of kw and j. Without it, three or
 * more flows that take turns in a set (one packet each, as 1,000 UDP
 * flows sent round robin do on one CPU) each evict the copy the next
 * packet needs, and every packet misses; with it, two of them stay and
 * hit, and the others take the table path, which they took anyway. A
 * flow that keeps sending gets in within some jiffies. */
static __always_inline int fc_admit(__u64 kw, __u64 j)
{
	return ((kw ^ j) * 0x9e3779b97f4a7c15ull) >> 61 == 0;
}

/* fc_way picks the entry of a set that k's copy goes to: the one that
 * already holds k (a flow is in at most one way), else the one whose
 * window ends first (w0 when both end in the same jiffy; an empty one
 * has until 0) when its window is over or fc_admit says so; NULL when k
 * is to stay out. */
static __always_inline struct fc_entry *fc_way(struct fc_entry *w0, struct fc_entry *w1, const __u64 *k, __u64 j)
{
	if (!w0)
		return NULL;
	if (fc_same(w0, k))
		return w0;
	/* w1 is looked up whenever w0 does not hold k */
	if (!w1)
		return NULL;
	if (fc_same(w1, k))
		return w1;
	struct fc_entry *v = w1->until < w0->until ? w1 : w0;
	if (j < v->until && !fc_admit(k[0] ^ k[1], j))
		return NULL;
	return v;
}

/* fc_begin and fc_end bracket the writing of an entry: it serves
 * nothing in between (should a second run of the program on this CPU
 * come in the middle, as a preemptible kernel allows), then until the
 * end of its window: a quarter of timeout, at most FC_WINDOW_NS, in
 * whole jiffies from j (now), so a hit compares jiffies and reads no
 * settings. Without a calibrated clock (clk_mult 0, HZ=300) a jiffy is
 * taken as FC_JIFFY_NS_MAX, the longest, which only shortens the
 * window. */
#define FC_JIFFY_NS_MAX 10000000ull /* HZ=100 */
static __always_inline void fc_begin(__u64 *until)
{
	*until = 0;
	asm volatile("" ::: "memory");
}

static __always_inline void fc_end(__u64 *until, const struct config *gc, __u64 j, __u64 timeout, int brief)
{
	__u64 win = timeout / 4;
	if (win > FC_WINDOW_NS)
		win = FC_WINDOW_NS;
	__u64 mult = gc && gc->clk_mult ? gc->clk_mult : FC_JIFFY_NS_MAX;
	__u64 n = win / mult;
	/* a brief copy: FC_BRIEF_NS at least, whole jiffies rounded up
	 * and one more (the copy ends at the start of jiffy j+n), never
	 * longer than the full window */
	if (brief) {
		__u64 b = (FC_BRIEF_NS + mult - 1) / mult + 1;
		if (n > b)
			n = b;
	}
	asm volatile("" ::: "memory");
	*until = j + n;
}

/* fc_serves says whether a copy of c could serve packets (fc_hit): an
 * established TCP connection or a UDP flow. */
static __always_inline int fc_serves(const struct conn *c)
{
	return c->state == ST_ESTABLISHED || c->state == ST_UDP;
}

/* fc_release frees a way that holds a copy which can no longer serve:
 * its window ends now (until 0), so it is not found and is the first
 * way the set's next flow takes. */
static __always_inline void fc_release(__u64 *until)
{
	if (*until)
		*until = 0;
}

/* The sweep (CFG_F_FC_SWEEP): where a flow's packets are handled on
 * whichever CPU sends them (veth, tun, loopback, macvlan and ipvlan
 * between namespaces: the loader sets the flag), a connection's copies
 * can sit on several CPUs, and a close through one CPU frees only that
 * CPU's. When the client's port comes back within the window (at once
 * after an RST or a close by the server), a packet of the new
 * connection that meets another CPU's copy goes the old connection's
 * way: its real server, or its SNAT binding, whose server socket is in
 * TIME_WAIT. In the harness's connection loads that made SNAT
 * retransmit (docs/BENCHMARKS.md, sixteenth session). So a client's
 * FIN or RST (after its state is written) and a SYN that replaces a
 * closing connection free the flow's copies on every CPU (fc_sweep4,
 * fc_sweep6): the set's two ways in each CPU's block, up to
 * FC_SWEEP_CPUS blocks, and no further than the highest CPU online
 * when the program was loaded (sweep_cpus) nor the map's end. Freeing
 * a way is always safe: at worst another CPU's packet misses and takes
 * the table path. A CPU that read the old connection from the table
 * before the state was written and fills its copy after the sweep
 * escapes it; it fills an established connection for its window. A
 * CPU brought online after the load is not swept until govs starts
 * again. With a NIC's RSS a flow stays on one CPU, the close frees its
 * only copy, and the flag is off. */
#define FC_SWEEP_CPUS 256
/* sweep_cpus is how many CPU blocks a sweep visits: the loader sets it
 * to the highest online CPU's number plus one when it loads the
 * program, where a virtual machine's possible CPUs, which the map has
 * blocks for, can be many times its online ones. */
volatile const __u32 sweep_cpus = FC_SWEEP_CPUS;
/* fc_sweep4 is the sweep of flow_cache for the set (index in a CPU's
 * block) and key words k0, k1 of a flow. It and fc_sweep6 are global
 * functions, which the verifier checks once on their own (their loops
 * inlined would be checked again on every path to them, past its
 * limit); their arguments are scalars for that. */
__attribute__((noinline)) int fc_sweep4(__u32 set, __u64 k0, __u64 k1)
{
	if (set >= FC_SLOTS)
		return 0;
#pragma clang loop unroll(disable)
	for (__u32 cpu = 0; cpu < FC_SWEEP_CPUS; cpu++) {
		if (cpu >= sweep_cpus)
			return 0;
		for (__u32 way = 0; way < FC_WAYS; way++) {
			__u32 i = cpu * FC_SLOTS + set + way;
			struct fc_entry *w = bpf_map_lookup_elem(&flow_cache, &i);
			if (!w)
				return 0;
			__u64 e[2];
			__builtin_memcpy(e, &w->key, sizeof(e));
			if (e[0] == k0 && e[1] == k1)
				fc_release(&w->until);
		}
	}
	return 0;
}

/* fc_brief says whether a copy made from this TCP packet serves only
 * briefly (FC_BRIEF_NS): one that does not show its connection goes on,
 * without payload (the ACK that establishes it, a SYN-ACK, a pure ACK
 * such as a close's last) or with SYN, FIN or RST. A stream of pure
 * ACKs (a download's client side, an upload's replies) is refilled
 * from the tables once a brief window, one lookup per 10-20 ms. UDP: 0
 * (a new flow's copy is made brief where it is made). Read on the
 * table path only. */
static __always_inline int fc_brief(struct xdp_md *ctx, const struct pktinfo *pi, int is_tcp, __u8 tcpflags)
{
	if (!is_tcp)
		return 0;
	if (tcpflags & 0x07)
		return 1;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *doff = data + (pi->l4off & 0x7f) + 12; /* IPv4 options: l4off up to 74 */
	if ((void *)(doff + 1) > data_end)
		return 1;
	/* payload: the IP length past the IP and TCP headers */
	return pi->len <= pi->l4off - sizeof(struct ethhdr) + (*doff >> 4) * 4;
}

/* fc_shorten ends a copy's window within FC_BRIEF_JIFFIES: a NAT reply
 * with FIN or RST served from it, after which the connection's last
 * packets come soon or not at all. */
static __always_inline void fc_shorten(__u64 *until, __u64 j)
{
	if (*until > j + FC_BRIEF_JIFFIES)
		*until = j + FC_BRIEF_JIFFIES;
}

/* fc_fill copies c into the set when the copy can serve (fc_serves), a
 * copy the flow already has always overwritten, and a flow without one
 * taking a way as fc_way allows. A connection in another state (a new
 * TCP connection before its handshake's ACK; one closing) takes no way,
 * and frees the one its flow has: it must not be found there as
 * established (a new connection on the same addresses and ports could
 * go to another real server), and a closed connection's copy kept for
 * its window would hold a way the set's live flows need: at thousands
 * of new connections a second, those copies outnumbered the ways, and
 * fc_admit kept most live ones out. */
static __always_inline void fc_fill(struct fc_entry *w0, struct fc_entry *w1, const __u64 *k,
				    const struct conn *c, const struct config *gc, __u64 j, int brief)
{
	if (!fc_serves(c)) {
		if (w0 && fc_same(w0, k))
			fc_release(&w0->until);
		else if (w1 && fc_same(w1, k))
			fc_release(&w1->until);
		return;
	}
	struct fc_entry *fe = fc_way(w0, w1, k, j);
	if (fe) {
		fc_begin(&fe->until);
		__builtin_memcpy(&fe->key, k, sizeof(fe->key));
		fe->c = *c;
		fc_end(&fe->until, gc, j, timeout_of(gc, c->state), brief);
	}
}

/* The IPv6 flow cache: the same for conn_tbl's connections under the
 * 40-byte flow_key, and NAT replies (fc_nat6). */
/* key6_words gives flow_key's five words (key4_words); flow_key is
 * 8-byte aligned, so the addresses are read as four 8-byte words, not
 * eight 4-byte ones. */
static __always_inline void key6_words(const struct flow_key *fk, __u64 w[5])
{
	w[0] = (__u64)fk->family | (__u64)fk->proto << 8 | (__u64)fk->sport << 16 | (__u64)fk->dport << 32 |
	       (__u64)fk->pad << 48;
	__builtin_memcpy(&w[1], fk->saddr, 16);
	__builtin_memcpy(&w[3], fk->daddr, 16);
}

static __always_inline __u32 fc6_set(const __u64 *w)
{
	__u64 h = (w[0] * 0x9e3779b97f4a7c15ull ^ w[1] * 0xc2b2ae3d27d4eb4full) ^
		  (w[2] * 0x165667b19e3779f9ull ^ w[3] * 0x27d4eb2f165667c5ull) ^ w[4] * 0x85ebca77c2b2ae63ull;
	return cpu_slot(FC6_SLOTS, (__u32)(h >> (64 - FC6_SETS_LOG2)) * FC_WAYS);
}

static __always_inline int fc6_same(const struct fc_entry6 *fe, const __u64 *b)
{
	__u64 a[5];
	__builtin_memcpy(a, &fe->key, sizeof(a));
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4];
}

static __always_inline int fc6_hit(const struct fc_entry6 *fe, const __u64 *k, __u64 j, int is_tcp,
				   __u8 tcpflags)
{
	if (!fe || !fc6_same(fe, k) || j >= fe->until)
		return 0;
	__u8 st = fe->c.state;
	if (st == FC_NAT_REPLY)
		return FC_HIT_REPLY;
	if (is_tcp ? st != ST_ESTABLISHED || (tcpflags & 0x07) : st != ST_UDP)
		return 0;
	return FC_HIT_CONN;
}

static __always_inline struct fc_entry6 *fc6_way(struct fc_entry6 *w0, struct fc_entry6 *w1, const __u64 *k,
						 __u64 j)
{
	if (!w0)
		return NULL;
	if (fc6_same(w0, k))
		return w0;
	if (!w1)
		return NULL;
	if (fc6_same(w1, k))
		return w1;
	struct fc_entry6 *v = w1->until < w0->until ? w1 : w0;
	if (j < v->until && !fc_admit(k[0] ^ k[2] ^ k[4], j)) /* ports, both addresses' low words */
		return NULL;
	return v;
}

/* fc6_fill takes the set's index, not its ways: entry pointers kept
 * across the whole table path multiply the verifier's states past its
 * limit (the IPv4 ways are cheaper to keep). */
static __always_inline void fc6_fill(__u32 set, const struct flow_key *fk, const struct conn *c,
				     const struct config *gc, __u64 j, int brief)
{
	struct fc_entry6 *w0 = bpf_map_lookup_elem(&flow_cache6, &set);
	set++;
	struct fc_entry6 *w1 = bpf_map_lookup_elem(&flow_cache6, &set);
	__u64 k[5];
	key6_words(fk, k);
	if (!fc_serves(c)) { /* as fc_fill */
		if (w0 && fc6_same(w0, k))
			fc_release(&w0->until);
		else if (w1 && fc6_same(w1, k))
			fc_release(&w1->until);
		return;
	}
	struct fc_entry6 *fe = fc6_way(w0, w1, k, j);
	if (fe) {
		fc_begin(&fe->until);
		__builtin_memcpy(&fe->key, k, sizeof(k));
		fe->c = *c;
		fc_end(&fe->until, gc, j, timeout_of(gc, c->state), brief);
	}
}

/* fc6_fold folds two key words into one. fc_sweep6 takes a flow's five
 * words as two folds (fc6_folds): as many arguments as fc_sweep4, which
 * leaves it a 16-byte stack frame (24 with five arguments), and a
 * called function's frame counts against the program's 512 bytes with
 * the caller's. A flow of the same set whose folds collide loses its
 * copy too, which costs it a miss. */
static __always_inline __u64 fc6_fold(__u64 x, __u64 y)
{
	return x ^ y * 0x9e3779b97f4a7c15ull;
}

/* fc6_folds gives key words w's two folds: ports, protocol and the
 * source address's high word; the rest of the addresses. */
static __always_inline void fc6_folds(__u64 w0, __u64 w1, __u64 w2, __u64 w3, __u64 w4, __u64 *a, __u64 *b)
{
	*a = fc6_fold(w0, w1);
	*b = fc6_fold(w2, w3) ^ w4 * 0xc2b2ae3d27d4eb4full; /* not fc6_fold: w3 and w4 swapped would fold alike */
}

/* fc_sweep6 is fc_sweep4 for flow_cache6 (a flow's folds a and b). */
__attribute__((noinline)) int fc_sweep6(__u32 set, __u64 a, __u64 b)
{
	if (set >= FC6_SLOTS)
		return 0;
#pragma clang loop unroll(disable)
	for (__u32 cpu = 0; cpu < FC_SWEEP_CPUS; cpu++) {
		if (cpu >= sweep_cpus)
			return 0;
		for (__u32 way = 0; way < FC_WAYS; way++) {
			__u32 i = cpu * FC6_SLOTS + set + way;
			struct fc_entry6 *w = bpf_map_lookup_elem(&flow_cache6, &i);
			if (!w)
				return 0;
			__u64 e[5], ea, eb;
			__builtin_memcpy(e, &w->key, sizeof(e));
			fc6_folds(e[0], e[1], e[2], e[3], e[4], &ea, &eb);
			if (ea == a && eb == b)
				fc_release(&w->until);
		}
	}
	return 0;
}

/* sweep_key frees flow k's copies on every CPU (fc_sweep4, fc_sweep6). */
static __always_inline void sweep_key(__u8 fam, const struct flow_key *k)
{
	if (fam == FAM_V4) {
		__u64 w[2];
		key4_words(k, w);
		fc_sweep4(fc_set(w) - cpu_slot(FC_SLOTS, 0), w[0], w[1]);
	} else {
		__u64 w[5];
		key6_words(k, w);
		__u64 a, b;
		fc6_folds(w[0], w[1], w[2], w[3], w[4], &a, &b);
		fc_sweep6(fc6_set(w) - cpu_slot(FC6_SLOTS, 0), a, b);
	}
}

/* sweep runs sweep_key for flow fk when the settings ask for it
 * (CFG_F_FC_SWEEP). */
static __always_inline void sweep(const struct config *gc, __u8 fam, const struct flow_key *fk)
{
	if (gc && (gc->flags & CFG_F_FC_SWEEP))
		sweep_key(fam, fk);
}

/* fc_reply sends a NAT reply from its copy in the flow cache (n, and
 * the addresses of its fc_nat or fc_nat6), as nat_reply and route_reply
 * would; -1 when the copy cannot serve it (a longer packet than its
 * route was looked up for, or its real server slot was reused): the
 * table path then takes it. */
static __always_inline int fc_reply(struct xdp_md *ctx, const struct flow_key *fk, const struct pktinfo *pi,
				    __u8 fam, const struct fc_nat_head *n, const __u8 *vaddr, const __u8 *caddr)
{
	if (pi->len > n->max_len)
		return -1;
	__u32 rid = n->real;
	struct real *r = real_of(rid);
	if (!r || r->gen == 0 || r->gen != n->gen)
		return -1;
	if (rewrite(ctx, fam, fk->proto, pi->l4off, vaddr, n->vport, n->snat ? caddr : NULL, n->cport))
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	count_out_r(r, pi->len);
	return reply_out(ctx, n->dmac, n->smac, n->ifindex, (r->flags & REAL_F_TX) ? r->ifindex : 0);
}

/* nat_reply_fill is nat_reply for a reply found in nat_tbl, which also
 * copies the translation and, once the route is known, its result into
 * the flow cache (IPv4: the set of w0 and w1, key words k; IPv6: set
 * set6 of flow_cache6). The copy serves for FC_WINDOW_NS (a quarter of
 * the UDP or TCP CLOSE timeout when that is shorter): a route or
 * neighbour change reaches the flow's replies up to that much later
 * (nat_tbl's entry replaced does not: nat_store and snat_bind free the
 * key's copies); FC_BRIEF_NS when brief (fc_brief). */
static __always_inline int nat_reply_fill(struct xdp_md *ctx, struct flow_key *fk, const struct nat_rev *nr,
					  const struct pktinfo *pi, struct fc_entry *w0, struct fc_entry *w1,
					  const __u64 *k, __u32 set6, const struct config *gc, __u64 j, int brief)
{
	struct fc_nat_head h = {};
	__u64 k6[5];
	if (pi->fam == FAM_V6)
		key6_words(fk, k6); /* before nat_reply sets an SNAT reply's destination */
	int rc = nat_reply(ctx, fk, nr, pi, pi->fam == FAM_V6 || w0 ? &h : NULL);
	if (!h.max_len)
		return rc; /* not routed: nothing to copy */
	h.state = FC_NAT_REPLY;
	h.real = nr->real;
	h.gen = nr->gen;
	h.snat = nr->snat;
	h.vport = nr->vport;
	h.cport = nr->cport;
	__u64 timeout = timeout_of(gc, fk->proto == IPPROTO_UDP ? ST_UDP : ST_CLOSE);
	if (pi->fam == FAM_V4) {
		struct fc_entry *fe = fc_way(w0, w1, k, j);
		if (!fe)
			return rc;
		struct fc_nat fn = {.h = h};
		__builtin_memcpy(fn.vaddr, nr->vaddr, 4);
		__builtin_memcpy(fn.caddr, nr->caddr, 4);
		fc_begin(&fe->until);
		__builtin_memcpy(&fe->key, k, sizeof(fe->key));
		__builtin_memcpy(&fe->c, &fn, sizeof(fn));
		fc_end(&fe->until, gc, j, timeout, brief);
		return rc;
	}
	struct fc_entry6 *w60 = bpf_map_lookup_elem(&flow_cache6, &set6);
	set6++;
	struct fc_entry6 *w61 = bpf_map_lookup_elem(&flow_cache6, &set6);
	struct fc_entry6 *fe = fc6_way(w60, w61, k6, j);
	if (!fe)
		return rc;
	struct fc_nat6 fn = {.h = h};
	__builtin_memcpy(fn.vaddr, nr->vaddr, 16);
	__builtin_memcpy(fn.caddr, nr->caddr, 16);
	fc_begin(&fe->until);
	__builtin_memcpy(&fe->key, k6, sizeof(k6));
	__builtin_memcpy(&fe->c, &fn, sizeof(fn));
	fc_end(&fe->until, gc, j, timeout, brief);
	return rc;
}

/* reply_refresh keeps a UDP flow alive while only its real server
 * sends: it stamps the connection a reply nr belongs to (the client's
 * address and port: the reply's destination for NAT, the binding's
 * for SNAT) with now, as IPVS refreshes a connection on packets of
 * either direction. Not on the copies fc_reply serves: a flow's
 * replies take this path once per window (FC_WINDOW_NS, at most a
 * quarter of the UDP timeout) on each CPU. TCP
 * clients acknowledge what they receive, which refreshes theirs. A
 * connection already expired, or since made to another real server,
 * is left alone. */
static __always_inline void reply_refresh(__u8 fam, const struct flow_key *fk, const struct nat_rev *nr,
					  const struct config *gc, __u64 now)
{
	struct flow_key ck = {.family = fam, .proto = fk->proto, .dport = nr->vport};
	if (nr->snat) {
		ck.sport = nr->cport;
		__builtin_memcpy(ck.saddr, nr->caddr, 16);
	} else {
		ck.sport = fk->dport;
		__builtin_memcpy(ck.saddr, fk->daddr, 16);
	}
	__builtin_memcpy(ck.daddr, nr->vaddr, 16);
	struct conn *c = conn_find(fam, &ck);
	if (c && c->real == nr->real && c->gen == nr->gen && c->last_ns < now &&
	    elapsed(now, c->last_ns) < timeout_of(gc, c->state))
		c->last_ns = now;
}

#include "snat.h"

/* nat_same says whether NAT entry a translates replies as b does: the
 * same virtual address and port, service and real server. */
static __always_inline int nat_same(const struct nat_rev *a, const struct nat_rev *b)
{
	return a->vport == b->vport && a->svc == b->svc && a->real == b->real && a->gen == b->gen && !a->snat &&
	       same16(a->vaddr, b->vaddr);
}

/* nat_store writes reply key rk's entry nv for a new NAT connection. An
 * entry already there that translates the same (a client reusing its
 * port toward the same virtual service and real server) is kept: no
 * LRU insert. One that translates otherwise (the port reused toward
 * another virtual service with the same real server and port, which
 * makes the same reply key) is replaced, and then the key's reply
 * copies go from every CPU's flow cache: they would send the new
 * connection's replies from the old virtual address for up to their
 * window. After the update, so a copy made from then on reads the new
 * entry; on every CPU whatever CFG_F_FC_SWEEP says, because with a
 * NIC's RSS the replies of a key stay on one CPU, but not this
 * packet's. */
static __always_inline void nat_store(__u8 fam, const struct flow_key *rk, const struct nat_rev *nv)
{
	struct nat_rev *old = bpf_map_lookup_elem(&nat_tbl, rk);
	if (!old) {
		bpf_map_update_elem(&nat_tbl, rk, nv, BPF_ANY);
		return;
	}
	if (nat_same(old, nv))
		return;
	bpf_map_update_elem(&nat_tbl, rk, nv, BPF_ANY);
	sweep_key(fam, rk);
}

/* handle_flow is the TCP/UDP path: service, connection, schedule, send. */
static __always_inline int handle_flow(struct xdp_md *ctx, struct flow_key *fk, __u8 tcpflags,
				       const struct pktinfo *pi)
{
	const __u8 fam = pi->fam;
	__u32 zero = 0;
	/* jiffies, inlined to a load of a kernel variable: a cache hit
	 * needs nothing else for its time, and the settings are read only
	 * when it misses (their line and page would be one more first
	 * touch per packet, the costliest in a cold profile) */
	__u64 j = bpf_jiffies64();
	int is_tcp = fk->proto == IPPROTO_TCP;
	int syn = tcpflags & 0x02, ack = tcpflags & 0x10, fin = tcpflags & 0x01, rst = tcpflags & 0x04;
	struct real *r = NULL;
	__u32 rid = 0;

	/* Established flows first, no service lookup. Flows try the
	 * flow cache before anything else (IPv6: flow_cache6). It holds
	 * connections the table path found in conn4_tbl (conn_tbl), and
	 * NAT replies it found in nat_tbl and routed (fc_nat, fc_nat6).
	 * (A flow that is both goes the way
	 * of the copy filled last for up to the window: a real server
	 * connecting to a VIP from the address and port a reply to an SNAT
	 * binding on that VIP would have, or a client whose address is a
	 * VIP serving the client's port.) */
	__u64 fck[2] = {};
	struct fc_entry *w0 = NULL, *w1 = NULL;
	__u32 set6 = 0;
	if (fam == FAM_V4) {
		key4_words(fk, fck);
		__u32 i = fc_set(fck);
		w0 = bpf_map_lookup_elem(&flow_cache, &i);
		struct fc_entry *fe = w0;
		int hit = fc_hit(w0, fck, j, is_tcp, tcpflags);
		if (!hit) {
			/* the second way only when the first misses (a
			 * fill needs it only then: fc_way) */
			i++;
			w1 = bpf_map_lookup_elem(&flow_cache, &i);
			hit = fc_hit(w1, fck, j, is_tcp, tcpflags);
			fe = w1;
		}
		if (hit == FC_HIT_REPLY && fe) {
			const struct fc_nat *fn = (const void *)&fe->c;
			int rc = fc_reply(ctx, fk, pi, FAM_V4, &fn->h, fn->vaddr, fn->caddr);
			if (rc >= 0) {
				if (tcpflags & 0x05)
					fc_shorten(&fe->until, j);
				return rc;
			}
		}
		if (hit == FC_HIT_CONN && fe) {
			r = conn_real(&fe->c);
			if (r) {
				count_r(r, 0, pi->len);
				struct pktinfo pc = *pi;
				pc.c = &fe->c;
				return forward(ctx, r, fk, &pc);
			}
		}
	} else {
		__u64 k6[5];
		key6_words(fk, k6);
		set6 = fc6_set(k6);
		__u32 i = set6;
		struct fc_entry6 *fe = bpf_map_lookup_elem(&flow_cache6, &i);
		int hit = fc6_hit(fe, k6, j, is_tcp, tcpflags);
		if (!hit) {
			i++;
			fe = bpf_map_lookup_elem(&flow_cache6, &i);
			hit = fc6_hit(fe, k6, j, is_tcp, tcpflags);
		}
		if (hit == FC_HIT_REPLY && fe) {
			const struct fc_nat6 *fn = (const void *)&fe->c;
			int rc = fc_reply(ctx, fk, pi, FAM_V6, &fn->h, fn->vaddr, fn->caddr);
			if (rc >= 0) {
				if (tcpflags & 0x05)
					fc_shorten(&fe->until, j);
				return rc;
			}
		}
		if (hit == FC_HIT_CONN && fe) {
			r = conn_real(&fe->c);
			if (r) {
				count_r(r, 0, pi->len);
				struct pktinfo pc = *pi;
				pc.c = &fe->c;
				return forward(ctx, r, fk, &pc);
			}
		}
	}

	struct config *gc = bpf_map_lookup_elem(&settings, &zero);
	__u64 now = now_ns(gc, j);

	/* NAT replies (real server -> client) are in nat_tbl, never in the
	 * connection table. With CFG_F_REPLY_PORTS the source port tells
	 * which packets can be replies: those are looked up there first,
	 * and the others not at all (without it, every packet that misses
	 * the connection table is). */
	int nat = gc && (gc->flags & CFG_F_NAT);
	int reply_first = 0;
	if (nat && (gc->flags & CFG_F_REPLY_PORTS)) {
		nat = reply_first = reply_port(fk->sport);
	}

	struct conn *c = reply_first ? NULL : conn_find(fam, fk);
	if (!c && nat) {
		struct nat_rev *nr = bpf_map_lookup_elem(&nat_tbl, fk);
		if (nr) {
			__u32 nrid = nr->real;
			struct real *nrr = real_of(nrid);
			if (nrr && nrr->gen != 0 && nrr->gen == nr->gen) {
				if (fk->proto == IPPROTO_UDP)
					reply_refresh(fam, fk, nr, gc, now);
				event(EV_FC_MISS);
				return nat_reply_fill(ctx, fk, nr, pi, w0, w1, fck, set6, gc, j,
						      fc_brief(ctx, pi, is_tcp, tcpflags));
			}
		}
		if (reply_first)
			c = conn_find(fam, fk);
	}
	if (c) {
		if (elapsed(now, c->last_ns) < timeout_of(gc, c->state)) {
			rid = c->real;
			r = conn_real(c);
		} else {
			event(EV_CONN_EXPIRED);
		}
		/* a new SYN on a closing connection starts a new one, and the
		 * old one's copies on other CPUs go (fc_sweep4) */
		if (r && is_tcp && syn && !ack && (c->state == ST_FIN_WAIT || c->state == ST_CLOSE)) {
			r = NULL;
			sweep(gc, fam, fk);
		}
		if (r) {
			if (is_tcp ? c->state == ST_ESTABLISHED && !(tcpflags & 0x07) : c->state == ST_UDP)
				event(EV_FC_MISS); /* fc_hit's test */
			if (is_tcp) {
				__u8 st = c->state;
				if (rst)
					st = ST_CLOSE;
				else if (fin)
					st = ST_FIN_WAIT;
				else if (ack && st == ST_SYN_RECV)
					st = ST_ESTABLISHED;
				if (st != c->state) {
					c->state = st;
					/* tells the daemon the counts changed */
					event(EV_CONN_STATE);
				}
				/* closed by the client: its copies on other
				 * CPUs go, after the state a CPU that fills
				 * one reads (fc_sweep4) */
				if (fin || rst)
					sweep(gc, fam, fk);
			}
			if (c->last_ns != now)
				c->last_ns = now;
			/* most connections are short, and their FIN through
			 * another CPU frees this CPU's copy only with the
			 * sweep: a copy kept for the window only from data */
			int brief = fc_brief(ctx, pi, is_tcp, tcpflags);
			fc_fill(w0, w1, fck, c, gc, j, brief); /* NULL ways for IPv6 */
			if (fam == FAM_V6)
				fc6_fill(set6, fk, c, gc, j, brief);
			count_r(r, 0, pi->len);
			struct pktinfo pc = *pi;
			pc.c = c;
			return forward(ctx, r, fk, &pc);
		}
	}

	struct svc_key sk = {.proto = fk->proto, .family = fam, .port = fk->dport};
	__builtin_memcpy(sk.addr, fk->daddr, 16);
	__u32 *sid = bpf_map_lookup_elem(&services, &sk);
	if (!sid) {
		if (!gc || !(gc->flags & CFG_F_WILDCARD))
			return done(EXIT_PASS_NO_SERVICE, XDP_PASS);
		sk.port = 0;
		sid = bpf_map_lookup_elem(&services, &sk);
		if (!sid)
			return done(EXIT_PASS_NO_SERVICE, XDP_PASS);
	}
	__u32 svc = *sid;
	struct svc_cfg *cfg = bpf_map_lookup_elem(&svc_cfgs, &svc);
	if (!cfg || !(cfg->flags & SVC_F_VALID))
		return done(EXIT_PASS_NO_SERVICE, XDP_PASS);

	if (is_tcp && !syn && !(gc && (gc->flags & CFG_F_SLOPPY_TCP)))
		return done(EXIT_PASS_TCP_NOSYN, XDP_PASS);
	r = schedule(svc, cfg, fam, fk, now, &rid);
	if (!r)
		return done(EXIT_DROP_NO_DEST, XDP_DROP);
	struct conn nc = {.last_ns = now, .svc = svc, .real = rid, .gen = r->gen};
	if (!is_tcp)
		nc.state = ST_UDP;
	else if (rst)
		nc.state = ST_CLOSE;
	else if (fin)
		nc.state = ST_FIN_WAIT;
	else if (syn)
		nc.state = ST_SYN_RECV;
	else
		nc.state = ST_ESTABLISHED;
	if (r->method == METHOD_NAT || r->method == METHOD_SNAT) {
		struct nat_rev nv = {.ns = now, .vport = fk->dport, .svc = svc, .real = rid, .gen = r->gen};
		__builtin_memcpy(nv.vaddr, fk->daddr, 16);
		if (r->method == METHOD_SNAT) {
			if (snat_bind(gc, cfg, svc, r, fam, fk, now, &nc, &nv))
				return done(EXIT_DROP_SNAT_EXHAUSTED, XDP_DROP);
		} else {
			struct flow_key rk = {.family = fam, .proto = fk->proto,
					      .sport = r->port ? bpf_htons(r->port) : fk->dport,
					      .dport = fk->sport};
			__builtin_memcpy(rk.saddr, r->addr, 16);
			__builtin_memcpy(rk.daddr, fk->saddr, 16);
			nat_store(fam, &rk, &nv);
		}
	}
	if (!(fk->proto == IPPROTO_UDP && (cfg->flags & SVC_F_ONEPACKET))) {
		conn_store(fam, fk, &nc);
		/* a new flow's copy serves briefly: its first packet does not
		 * show that more follow (a DNS query's flow has one) */
		fc_fill(w0, w1, fck, &nc, gc, j, 1);
		if (fam == FAM_V6)
			fc6_fill(set6, fk, &nc, gc, j, 1);
	}
	/* after the store: a walk that reads the count finds the entry */
	event(EV_CONN_NEW);
	count_r(r, 1, pi->len);
	struct pktinfo pc = *pi;
	pc.c = &nc;
	return forward(ctx, r, fk, &pc);
}

/* related looks up the flow an ICMP error quotes (a reply VIP → client
 * that could not be delivered) and sends the error to that flow's real
 * server. */
static __always_inline int related(struct xdp_md *ctx, struct flow_key *fk, const struct pktinfo *pi)
{
	struct conn *c = conn_find(pi->fam, fk);
	if (!c) {
		/* from a real server's side about what the director sent it
		 * (NAT: client:cport -> real; SNAT: laddr:lport -> real): the
		 * reversed quote is the reply key. The client gets it from
		 * the VIP, about its own packet client:cport -> VIP:vport. */
		__u32 zero = 0;
		struct config *gc = bpf_map_lookup_elem(&settings, &zero);
		if (!gc || !(gc->flags & CFG_F_NAT))
			return done(EXIT_PASS_ICMP, XDP_PASS);
		struct nat_rev *nr = bpf_map_lookup_elem(&nat_tbl, fk);
		if (!nr)
			return done(EXIT_PASS_ICMP, XDP_PASS);
		__u32 nrid = nr->real;
		struct real *nrr = real_of(nrid);
		if (!nrr || nrr->gen == 0 || nrr->gen != nr->gen)
			return done(EXIT_PASS_ICMP, XDP_PASS);
		struct xlate x = {.qdport = nr->vport};
		__builtin_memcpy(x.osrc, nr->vaddr, 16);
		__builtin_memcpy(x.qdst, nr->vaddr, 16);
		__u32 what = X_OSRC | X_QDST;
		if (nr->snat) {
			__builtin_memcpy(x.odst, nr->caddr, 16);
			__builtin_memcpy(x.qsrc, nr->caddr, 16);
			x.qsport = nr->cport;
			__builtin_memcpy(fk->daddr, nr->caddr, 16);
			what |= X_ODST | X_QSRC;
		}
		if (icmp_xlate(ctx, pi->fam, pi->l4off, what, &x))
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		count_out(nrid, pi->len);
		return route_reply(ctx, fk, nr->vaddr, pi, NULL);
	}
	struct real *r = conn_real(c);
	if (!r)
		return done(EXIT_PASS_ICMP, XDP_PASS);
	count_r(r, 0, pi->len);
	struct pktinfo pc = *pi;
	pc.c = c; /* SNAT: the binding the real server knows */
	return forward(ctx, r, fk, &pc);
}

static __always_inline int handle_v4(struct xdp_md *ctx, void *data, void *data_end)
{
	struct iphdr *iph = data + sizeof(struct ethhdr);
	if ((void *)(iph + 1) > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	__u32 ihl = iph->ihl * 4;
	if (iph->version != 4 || ihl < sizeof(*iph))
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return done(EXIT_PASS_FRAGMENT, XDP_PASS);
	struct pktinfo pi = {
		.len = bpf_ntohs(iph->tot_len),
		.df = iph->frag_off & bpf_htons(IP_DF),
		.tos = iph->tos,
		.fam = FAM_V4,
	};
	pi.l4off = sizeof(struct ethhdr) + ihl;
	struct flow_key fk = {.family = FAM_V4, .proto = iph->protocol};
	void *l4 = (void *)iph + ihl;
	__u8 tcpflags = 0;

	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		fk.sport = th->source;
		fk.dport = th->dest;
		tcpflags = ((__u8 *)th)[13];
	} else if (iph->protocol == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		fk.sport = uh->source;
		fk.dport = uh->dest;
	} else if (iph->protocol == IPPROTO_ICMP) {
		struct icmphdr *ic = l4;
		if ((void *)(ic + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		if (ic->type != ICMP_DEST_UNREACH && ic->type != ICMP_TIME_EXCEEDED &&
		    ic->type != ICMP_PARAMETERPROB)
			return done(EXIT_PASS_ICMP, XDP_PASS);
		struct iphdr *in = (void *)(ic + 1);
		if ((void *)(in + 1) + 4 > data_end)
			return done(EXIT_PASS_ICMP, XDP_PASS);
		if (in->ihl != 5 || (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP))
			return done(EXIT_PASS_ICMP, XDP_PASS);
		__u16 *ports = (void *)(in + 1);
		fk.proto = in->protocol;
		__builtin_memcpy(fk.saddr, &in->daddr, 4);
		__builtin_memcpy(fk.daddr, &in->saddr, 4);
		fk.sport = ports[1];
		fk.dport = ports[0];
		pi.related = 1;
		return related(ctx, &fk, &pi);
	} else {
		return done(EXIT_PASS_OTHER_PROTO, XDP_PASS);
	}
	__builtin_memcpy(fk.saddr, &iph->saddr, 4);
	__builtin_memcpy(fk.daddr, &iph->daddr, 4);
	return handle_flow(ctx, &fk, tcpflags, &pi);
}

static __always_inline int handle_v6(struct xdp_md *ctx, void *data, void *data_end)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	if ((void *)(ip6 + 1) > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	struct pktinfo pi = {
		.len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6),
		.tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4),
		.fam = FAM_V6,
	};
	pi.l4off = sizeof(struct ethhdr) + sizeof(*ip6);
	struct flow_key fk = {.family = FAM_V6, .proto = ip6->nexthdr};
	void *l4 = ip6 + 1;
	__u8 tcpflags = 0;

	switch (ip6->nexthdr) {
	case IPPROTO_TCP: {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		fk.sport = th->source;
		fk.dport = th->dest;
		tcpflags = ((__u8 *)th)[13];
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		fk.sport = uh->source;
		fk.dport = uh->dest;
		break;
	}
	case IPPROTO_ICMPV6: {
		struct icmp6hdr *ic = l4;
		if ((void *)(ic + 1) > data_end)
			return done(EXIT_DROP_MALFORMED, XDP_DROP);
		if (ic->icmp6_type < ICMPV6_DEST_UNREACH || ic->icmp6_type > ICMPV6_PARAMPROB)
			return done(EXIT_PASS_ICMP, XDP_PASS);
		struct ipv6hdr *in = (void *)(ic + 1);
		if ((void *)(in + 1) + 4 > data_end)
			return done(EXIT_PASS_ICMP, XDP_PASS);
		if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
			return done(EXIT_PASS_ICMP, XDP_PASS);
		__u16 *ports = (void *)(in + 1);
		fk.proto = in->nexthdr;
		__builtin_memcpy(fk.saddr, &in->daddr, 16);
		__builtin_memcpy(fk.daddr, &in->saddr, 16);
		fk.sport = ports[1];
		fk.dport = ports[0];
		pi.related = 1;
		return related(ctx, &fk, &pi);
	}
	case IPPROTO_FRAGMENT:
		return done(EXIT_PASS_FRAGMENT, XDP_PASS);
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
		return done(EXIT_PASS_IPV6_EXT, XDP_PASS);
	default:
		return done(EXIT_PASS_OTHER_PROTO, XDP_PASS);
	}
	/* The addresses as 8-byte words. The verifier checks a packet
	 * access's alignment only on architectures without efficient
	 * unaligned access, and there as if the frame began 2 bytes past
	 * an aligned address (NET_IP_ALIGN): the addresses, 22 and 38 bytes
	 * in, are then 8-byte aligned. */
	__builtin_memcpy(fk.saddr, __builtin_assume_aligned(&ip6->saddr, 8), 16);
	__builtin_memcpy(fk.daddr, __builtin_assume_aligned(&ip6->daddr, 8), 16);
	return handle_flow(ctx, &fk, tcpflags, &pi);
}

SEC("xdp")
int govs_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return done(EXIT_DROP_MALFORMED, XDP_DROP);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return handle_v4(ctx, data, data_end);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return handle_v6(ctx, data, data_end);
	return done(EXIT_PASS_NOT_IP, XDP_PASS);
}

/* govs_clock is never attached: the loader runs it through
 * BPF_PROG_TEST_RUN to read jiffies and the coarse clock together, and
 * calibrates config.clk_mult/clk_off from two or more readings. It writes
 * {jiffies before, coarse ns, jiffies after} into the first 24 bytes. */
SEC("xdp")
int govs_clock(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 *p = data;
	if ((void *)(p + 3) > data_end)
		return XDP_ABORTED;
	p[0] = bpf_jiffies64();
	p[1] = bpf_ktime_get_coarse_ns();
	p[2] = bpf_jiffies64();
	return XDP_PASS;
}
