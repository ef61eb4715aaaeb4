/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps of the director program, pinned by name (included by lb.c). */
#ifndef GOVS_MAPS_H
#define GOVS_MAPS_H

#define PIN __uint(pinning, LIBBPF_PIN_BY_NAME)

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 17);
	__type(key, struct svc_key);
	__type(value, __u32);
	PIN;
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct svc_cfg);
	PIN;
} svc_cfgs SEC(".maps");

/* Scheduling tables: real server ids, svc_cfg.tbl_base + slot. A flat
 * array the loader writes through its mapping, slot by slot with
 * 4-byte stores, so a run never reads half an id; an array lookup is
 * inlined, and it takes 8 MiB (values are 8-byte aligned) where a hash
 * of as many entries took 80. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, SCHED_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
	PIN;
} sched_tbl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
	PIN;
} cursors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16); /* set by the loader */
	__type(key, struct flow_key);
	__type(value, struct conn);
	PIN;
} conn_tbl SEC(".maps");

/* IPv4 connections (conn_tbl holds IPv6 ones), same size. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16); /* set by the loader (= conn_tbl) */
	__type(key, struct flow_key4);
	__type(value, struct conn);
	PIN;
} conn4_tbl SEC(".maps");

/* The flow cache: FC_SLOTS entries per CPU in sets of FC_WAYS, CPU n's
 * at n*FC_SLOTS. Not pinned: it only repeats conn4_tbl, and a new program
 * starts with an empty one. BPF_F_MMAPABLE for its page-aligned values:
 * each 64-byte entry is then one cache line, and a set two adjacent ones. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FC_SLOTS); /* × possible CPUs, set by the loader */
	__type(key, __u32);
	__type(value, struct fc_entry);
} flow_cache SEC(".maps");

/* The IPv6 flow cache: the same for conn_tbl, FC6_SLOTS entries per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FC6_SLOTS); /* × possible CPUs, set by the loader */
	__type(key, __u32);
	__type(value, struct fc_entry6);
} flow_cache6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16); /* set by the loader */
	__type(key, struct persist_key);
	__type(value, struct persist_val);
	PIN;
} persist_tbl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 16); /* set by the loader (NATTableSize) */
	__type(key, struct flow_key);
	__type(value, struct nat_rev);
	PIN;
} nat_tbl SEC(".maps");

/* The source ports NAT and SNAT replies can have (CFG_F_REPLY_PORTS): a
 * packet from another port is no reply, and one from such a port is
 * looked up as a reply first. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, REPLY_PORT_WORDS);
	__type(key, __u32);
	__type(value, __u64);
	PIN;
} reply_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SNAT_POOL_ENTRIES);
	__type(key, __u32);
	__type(value, struct pool_addr);
	PIN;
} snat_pool SEC(".maps");

/* New connections dropped per service for want of a free SNAT binding. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u64);
	PIN;
} snat_fail SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct counters);
	PIN;
} stats_svc SEC(".maps");

/* Per-CPU counters and real servers (CD_* in lb.h). Plain array, not
 * PERCPU_ARRAY: in place, a packet's first access to a PERCPU_ARRAY value
 * cost some 30-35 ns on the test guest, an ARRAY value 4
 * (docs/BENCHMARKS.md). Each CPU writes only its own block; mmapable, so
 * the data is page-aligned (the blocks whole pages, the entries whole
 * cache lines) and the loader reads and writes it mapped. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, CD_ENTRIES); /* × possible CPUs, set by the loader */
	__type(key, __u32);
	__type(value, union cd_entry);
	PIN;
} cpu_data SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
	PIN;
} settings SEC(".maps");

#endif
