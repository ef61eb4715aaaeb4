/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared definitions of the govs XDP director: map keys and values the
 * Go loader reads and writes (bpf2go generates matching Go types). */
#ifndef GOVS_LB_H
#define GOVS_LB_H

#include <linux/types.h>

#define MAX_SERVICES 1024
#define MAX_REALS 8192

/* Address families as stored in keys (not AF_*, to keep keys small). */
#define FAM_V4 4
#define FAM_V6 6

/* Forwarding methods (same numbering as dataplane.Method). */
#define METHOD_NAT 0
#define METHOD_DR 1
#define METHOD_TUN 2
#define METHOD_SNAT 3

#define SNAT_POOL_ENTRIES 65536 /* snat_pool: addresses of every service's pool */
#define SNAT_TRIES 64 /* random probes for a free (source, port); ~1e-7 failure at 78% use */
/* A binding is never taken over within this time of being claimed, so a
 * connection that is being set up on another CPU keeps it. */
#define SNAT_GUARD_NS 1000000000ULL

/* How a service turns a new flow into a slot of its scheduling table. */
enum sched_mode {
	SCHED_CURSOR = 0,   /* shared cursor over the table (rr, wrr, lc, ...) */
	SCHED_HASH_SRC = 1, /* hash_32 of the client address (sh) */
	SCHED_HASH_DST = 2, /* hash of the virtual address (dh) */
	SCHED_HASH_MH = 3,  /* hsiphash of the client address, modulo size (mh) */
};

/* svc_cfg.flags */
#define SVC_F_VALID (1 << 0)
#define SVC_F_PERSIST (1 << 1)
#define SVC_F_ONEPACKET (1 << 2)
#define SVC_F_HASH_PORT (1 << 3) /* sh-port / mh-port: add the source port */

/* Connection states (index into cfg.timeouts). */
enum conn_state {
	ST_NONE = 0, /* persistence template */
	ST_SYN_RECV = 1,
	ST_ESTABLISHED = 2,
	ST_FIN_WAIT = 3,
	ST_CLOSE = 4,
	ST_UDP = 5,
	ST_MAX = 6,
};

/* Exit reasons: every run of the program ends in exactly one. */
enum exit_reason {
	EXIT_PASS_NOT_IP = 0,
	EXIT_PASS_NO_SERVICE,
	EXIT_PASS_FRAGMENT,
	EXIT_PASS_OTHER_PROTO,
	EXIT_PASS_IPV6_EXT,
	EXIT_PASS_ICMP,       /* ICMP not related to a tracked flow */
	EXIT_PASS_TCP_NOSYN,  /* TCP miss without SYN (IPVS passes it) */
	EXIT_PASS_NAT_METHOD, /* method not handled by this program */
	EXIT_DROP_MALFORMED,
	EXIT_DROP_NO_DEST,
	EXIT_DROP_NO_NEIGH,
	EXIT_DROP_ADJUST,     /* bpf_xdp_adjust_head/tail failed */
	EXIT_DROP_TOOBIG,     /* too big, no ICMP possible (no DF, options) */
	EXIT_TX_DR,
	EXIT_REDIRECT_DR,
	EXIT_TX_TUN,
	EXIT_REDIRECT_TUN,
	EXIT_TX_ICMP_TOOBIG,
	EXIT_TX_ICMP_RELATED, /* an ICMP error forwarded along its flow */
	EXIT_REDIRECT_ICMP_RELATED,
	EXIT_TX_NAT,          /* client → real server, destination rewritten */
	EXIT_REDIRECT_NAT,
	EXIT_TX_NAT_REPLY,    /* real server → client, source rewritten back */
	EXIT_REDIRECT_NAT_REPLY,
	EXIT_PASS_NAT_REPLY,  /* rewritten reply left to the kernel's routing */
	EXIT_TX_SNAT,
	EXIT_REDIRECT_SNAT,
	EXIT_DROP_SNAT_EXHAUSTED, /* no free source port after SNAT_TRIES */
	EXIT_MAX,
};

/* Exit counters in one CPU's block of cpu_data: EXIT_MAX rounded up to
 * whole cache lines, so no two CPUs write one line. */
#define EXIT_SLOTS 32
_Static_assert(EXIT_MAX <= EXIT_SLOTS, "EXIT_SLOTS holds every exit reason");

/* Event counters beside the exit reasons (not exits). */
enum event {
	EV_CONN_NEW = 0,
	EV_CONN_EXPIRED,
	EV_PERSIST_HIT,
	EV_SORRY,
	EV_CONN_STATE, /* a tracked TCP connection changed state */
	EV_FC_MISS,    /* a packet the flow cache serves, served from the tables:
			* an established TCP packet without SYN/FIN/RST, a UDP
			* packet of a tracked flow, a NAT reply */
	EV_MAX,
};

/* Event counters in one CPU's block of cpu_data: more than EV_MAX, so
 * that a later event does not change the pinned map's layout. Two cache
 * lines. */
#define EV_SLOTS 16
_Static_assert(EV_MAX <= EV_SLOTS, "EV_SLOTS holds every event");

/* cpu_data holds, per CPU, everything a forwarded packet writes or reads
 * besides its flow-cache set and the tables: CD_ENTRIES entries of 128
 * bytes (two cache lines), CPU n's block at n*CD_ENTRIES, laid out as
 *   CD_EXITS   EXIT_SLOTS exit counters (2 entries),
 *   CD_EVENTS  EV_SLOTS event counters (1 entry),
 *   CD_REALS   for real server id n, entry CD_REALS+n: its struct real
 *              (the loader writes the same into every CPU's block) and
 *              its struct counters, in the next line.
 * Spread over maps, these were four pages per packet, and a page a packet
 * touches first costs it a TLB miss (some 20 ns on the test guest, where
 * every kernel entry empties the TLB); with the block, the counters and
 * real servers 1-28 share one page, and a real server's entry
 * found, its counters need no lookup. Blocks are whole pages. */
#define CD_EXITS 0
#define CD_EVENTS 2
#define CD_REALS 3
#define CD_ENTRIES ((CD_REALS + MAX_REALS + 31) & ~31)
_Static_assert(EXIT_SLOTS * 8 == (CD_EVENTS - CD_EXITS) * 128, "the exit counters fill their entries");
_Static_assert(EV_SLOTS * 8 == (CD_REALS - CD_EVENTS) * 128, "the event counters fill their entry");

struct svc_key {
	__u8 proto;
	__u8 family;
	__u16 port; /* network order; 0 = any port */
	__u8 addr[16];
};

struct svc_cfg {
	__u32 flags;
	__u32 table_size; /* slots in sched_tbl for this service */
	__u32 hash_bits;  /* != 0: slot = hash_32(x, bits) as IPVS sh/dh */
	__u32 sorry_real; /* real slot of the sorry server, 0 = none */
	__u32 persist_timeout; /* seconds */
	__u8 persist_mask;     /* prefix length of client addresses */
	__u8 mode;             /* enum sched_mode */
	__u8 family;           /* key, for the loader's adoption after restart */
	__u8 proto;
	__u16 port; /* host order */
	__u16 pad;
	__u32 fwmark;
	__u8 addr[16];
	/* SNAT: the service's source addresses are snat_pool[pool_base ..
	 * pool_base + pool_len), of the service's family; 0 addresses = the
	 * real server's src. Ports port_min..port_max (host order). */
	__u32 pool_base;
	__u32 pool_len;
	__u16 port_min;
	__u16 port_max;
	/* The scheduling table is sched_tbl[tbl_base .. tbl_base +
	 * table_size): a run of the flat array the loader allocates per
	 * service (a govs before it left 0 here and kept tables in a hash). */
	__u32 tbl_base;
};

/* sched_tbl's entries: every service's table, one run each. */
#define SCHED_SLOTS (1 << 20)

/* What direct routing reads on every packet (MACs, interface, generation,
 * method) comes first, in 28 bytes, so it shares a cache line. */
struct real {
	__u8 dmac[6];
	__u8 smac[6];
	__u32 ifindex;  /* egress interface */
	__u32 svc;
	__u32 gen;      /* bumped whenever the slot is reused */
	__u8 family;
	__u8 method;
	__u8 valid;     /* 1 when dmac/ifindex are resolved */
	__u8 flags;     /* REAL_F_* */
	__u16 port;     /* host order, informational */
	__u16 mtu;      /* egress MTU */
	__u8 addr[16];  /* real server address (outer destination for TUN) */
	__u8 src[16];   /* outer source for TUN when no per-flow prefix */
};
_Static_assert(sizeof(struct real) == 64, "a real server is one line of cpu_data");

/* real.flags: REAL_F_TX says that the program is attached to ifindex
 * alone, so every packet arrives there and leaves by XDP_TX: the
 * program skips reading its ingress interface (ctx->ingress_ifindex is
 * two dependent loads, the second from the net_device, which cost some
 * 6 % of a flow-cache hit in place). The loader sets it only once the
 * program is attached to that one interface, and clears it before
 * attaching to another. */
#define REAL_F_TX (1 << 0)
/* REAL_F_REDIR says that packets to this real server leave by
 * bpf_redirect to its interface without the program comparing that
 * with the ingress one: the loader sets it when the program is
 * attached to more than one interface, or not to the server's. A
 * packet that did come in on the server's interface is then
 * redirected back out of it (a redirect to the ingress interface
 * works wherever XDP_TX does on a driver that takes redirects), where
 * the comparison would have sent it by XDP_TX. */
#define REAL_F_REDIR (1 << 1)

/* 8-byte aligned wherever it is (stack, map values, fc_entry6), so its
 * addresses read as 8-byte words (key6_words) and a key is cleared with
 * 8-byte stores. */
struct flow_key {
	__u8 family;
	__u8 proto;
	__u16 sport; /* network order, client port */
	__u16 dport; /* network order, virtual port */
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
} __attribute__((aligned(8)));
_Static_assert(sizeof(struct flow_key) == 40 && _Alignof(struct flow_key) == 8, "flow_key is five 8-byte words");

/* Key of conn4_tbl: an IPv4 flow in 16 bytes instead of flow_key's 40,
 * so the established fast path hashes and compares less. No padding: all
 * bytes are set. */
struct flow_key4 {
	__u8 saddr[4];
	__u8 daddr[4];
	__u16 sport; /* network order */
	__u16 dport; /* network order */
	__u32 proto;
};

struct conn {
	__u64 last_ns; /* coarse monotonic ns of the last packet (now_ns) */
	__u32 svc;
	__u32 real;
	__u32 gen;
	__u8 state;
	__u8 snat;      /* 1: the source is rewritten to laddr:lport */
	__u16 lport;    /* network order */
	__u8 laddr[16]; /* SNAT source toward the real server */
};

/* A flow cache entry (lb.c): an IPv4 connection as conn4_tbl held it.
 * 64 bytes: in the page-aligned map, one cache line. */
struct fc_entry {
	struct flow_key4 key;
	struct conn c;
	__u64 until; /* jiffies before which the entry serves (fc_fill) */
};
_Static_assert(sizeof(struct fc_entry) == 64, "fc_entry is one cache line");

/* An IPv6 flow cache entry (lb.c): a connection as conn_tbl held it, or
 * a NAT reply (struct fc_nat6 in place of c, running into pad). 128
 * bytes: in the page-aligned map, two cache lines. */
struct fc_entry6 {
	struct flow_key key;
	__u64 until; /* jiffies before which the entry serves (fc6_fill) */
	struct conn c;
	__u8 pad[40];
};
_Static_assert(sizeof(struct fc_entry6) == 128, "fc_entry6 is two cache lines");

/* A NAT or SNAT reply (real server -> client) in a flow cache entry,
 * in place of struct conn (fc_nat in an fc_entry, fc_nat6 in an
 * fc_entry6), state at conn's offset holding FC_NAT_REPLY. It carries
 * nat_tbl's translation and the route's result (bpf_fib_lookup), and
 * serves packets no longer than max_len, the length the route was
 * looked up for (its MTU is not reported on success). fc_nat_head is
 * what both families' copies hold besides the two addresses;
 * route_reply fills its route part. */
struct fc_nat_head {
	__u8 dmac[6];
	__u8 smac[6];
	__u32 ifindex;  /* egress */
	__u32 real;
	__u8 state;     /* FC_NAT_REPLY */
	__u8 snat;      /* 1: the destination is rewritten to caddr:cport too */
	__u16 vport;    /* network order */
	__u32 gen;      /* real's generation when filled */
	__u16 cport;    /* network order */
	__u16 max_len;  /* IP length */
};
struct fc_nat {
	struct fc_nat_head h;
	__u8 vaddr[4]; /* the new source */
	__u8 caddr[4];
};
struct fc_nat6 {
	struct fc_nat_head h;
	__u8 vaddr[16];
	__u8 caddr[16];
};
#define FC_NAT_REPLY 0xff
_Static_assert(sizeof(struct fc_nat) == sizeof(struct conn), "fc_nat stands in for struct conn");
_Static_assert(__builtin_offsetof(struct fc_nat_head, state) == __builtin_offsetof(struct conn, state),
	       "a copy's state is conn's");
_Static_assert(__builtin_offsetof(struct fc_entry6, c) + sizeof(struct fc_nat6) <= sizeof(struct fc_entry6),
	       "fc_nat6 fits in an fc_entry6 from its conn on");

/* The flow cache is 2-way set-associative: 2^FC_SETS_LOG2 sets of
 * FC_WAYS entries per CPU, a set in two adjacent cache lines. 128 KiB
 * per CPU, 32 pages (see lb.c for the size). */
#define FC_SETS_LOG2 10
#define FC_WAYS 2
#define FC_SLOTS ((1 << FC_SETS_LOG2) * FC_WAYS)
/* IPv6: 2^FC6_SETS_LOG2 sets of FC_WAYS two-line entries, 128 KiB per CPU. */
#define FC6_SETS_LOG2 9
#define FC6_SLOTS ((1 << FC6_SETS_LOG2) * FC_WAYS)
/* An entry is used for at most this long after its connection's last
 * refresh in its table (and never beyond a quarter of its timeout).
 * Each refresh is a lookup in a table of millions, its bucket and
 * element both cold (some 600 ns in place): with 250 ms, the refreshes
 * of the harness's 64 flows at 50k pkt/s, 0.5 % of the packets, took
 * 6 % of the program's samples. */
#define FC_WINDOW_NS 1000000000ull
/* A copy made from a packet that does not show its flow goes on (a new
 * flow's first packet; a TCP packet, either way, without payload or
 * with SYN, FIN or RST: fc_brief)
 * serves about this long (at least, in whole jiffies plus one: fc_end)
 * until a packet that does refills it: at thousands of new connections
 * a second, copies of flows already over, each kept for FC_WINDOW_NS,
 * outnumbered the ways, and fc_admit kept most live ones out. A short
 * connection's packets after its handshake come well within it. */
#define FC_BRIEF_NS 10000000ull
/* A NAT reply copy that served a FIN or RST serves one or two jiffies
 * more (fc_shorten): the close's last ACK when it comes at once, without
 * a copy kept for the window. On the hit path, which reads no settings,
 * so in jiffies: 1-2 ms at HZ 1000, 4-8 ms at 250, 10-20 ms at 100. */
#define FC_BRIEF_JIFFIES 2

struct persist_key {
	__u32 svc;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16]; /* masked client address */
};

struct persist_val {
	__u64 last_ns;
	__u32 real;
	__u32 gen;
};

struct counters {
	__u64 conns;
	__u64 pkts;
	__u64 bytes;
	__u64 out_pkts;
	__u64 out_bytes;
};

/* An entry of cpu_data (CD_* above): a real server and its counters, or
 * counters. */
struct cd_real {
	struct real real;
	struct counters ctr;
	__u8 pad[24];
};
union cd_entry {
	struct cd_real rs;
	__u64 w[16];
};
_Static_assert(sizeof(union cd_entry) == 128, "cpu_data's entries are two cache lines");

/* NAT reverse entry: key is the reply's flow_key (real server → client). */
struct nat_rev {
	__u64 ns;       /* coarse ns when the binding was claimed (compare-and-swapped to take a stale one over) */
	__u8 vaddr[16]; /* virtual address to restore as the source */
	__u16 vport;    /* network order */
	__u16 cport;    /* SNAT: client port to restore as the destination */
	__u32 svc;
	__u32 real;
	__u32 gen;
	__u8 caddr[16]; /* SNAT: client address to restore as the destination */
	__u8 snat;
	__u8 pad[3];
};

struct pool_addr {
	__u8 addr[16];
};

struct config {
	__u64 timeout_ns[ST_MAX];
	__u32 flags;        /* CFG_F_* */
	__u8 tun_src4[4];   /* per-flow outer source prefix, IPv4 */
	__u32 tun_mask4;    /* host bits of that prefix (host order mask) */
	__u8 tun_src6[16];  /* per-flow outer source prefix, IPv6 (low 32 bits varied) */
	__u32 tun_mask6;
	/* Clock: when clk_mult != 0, now = jiffies * clk_mult + clk_off
	 * (mod 2^64) approximates CLOCK_MONOTONIC_COARSE in ns to within a
	 * tick. The loader calibrates it with govs_clock; bpf_jiffies64 is
	 * inlined by the verifier (a load) where bpf_ktime_get_coarse_ns is
	 * a helper call. 0 = use bpf_ktime_get_coarse_ns. */
	__u64 clk_mult;
	__u64 clk_off;
};

#define CFG_F_SLOPPY_TCP (1 << 0) /* schedule TCP flows that miss without SYN */
#define CFG_F_TUN_SRC4 (1 << 1)
#define CFG_F_TUN_SRC6 (1 << 2)
#define CFG_F_WILDCARD (1 << 3) /* some service matches every port (port 0) */
#define CFG_F_NAT (1 << 4)      /* some real server is reached by NAT: look replies up */
#define CFG_F_REPLY_PORTS (1 << 5) /* reply_ports holds every source port a NAT reply can have */
#define CFG_F_FC_SWEEP (1 << 6) /* a close frees a flow's copies on every CPU (fc_sweep) */

/* reply_ports: a bit per port (host order), 64 to an entry. */
#define REPLY_PORT_WORDS (65536 / 64)

#endif
