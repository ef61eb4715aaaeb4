# shellcheck shell=bash
# loads.sh: the loads bench/run.sh offers through each peer. Each writes
# samples with record(); a failed measurement records nothing.
#
# Variables from run.sh: DUR, WARM (seconds), FIXED_PPS, FIXED_CPS, WORK,
# RAW, CUR_PEER, CUR_ROUND; from the peer: TGT, TG_DEV, TG_SADDR, TG_SMAC,
# TG_DMAC, PEER_NO_UDP.

# The 1M-flow test runs last: the state it leaves in a director (full flow
# tables, sockets) must not colour the other figures of the same peer.
ALL_LOADS="udp cost conn conn_raw lat bulk flows"

record() {
	[[ -n $2 ]] || return 0
	printf '%s\t%s\t%s\t%s\t%s\n' "$TB_LAYOUT" "$CUR_PEER" "$CUR_ROUND" "$1" "$2" >>"$RAW"
	printf '    %-16s %s\n' "$1" "$2"
}

now_ns() { date +%s%N; }

# tg_conf FLOWS writes a trafgen config of 60-byte UDP frames (64 on the
# wire with FCS) to the sink port: "1k" varies the source port over 1000
# values, "1m" varies the source port over 65536 and the source address over
# 17 values (1,114,112 distinct flows).
tg_conf() {
	local f=$WORK/tg-$1.cfg ip udp
	if [[ $1 == 1m ]]; then
		ip="ipv4(saddr=198.18.2.1, saddr[3]=dinc(1, 17), daddr=$TGT, ttl=64, df)"
		udp="udp(sp=dinc(0, 65535), dp=9)"
	else
		ip="ipv4(saddr=$TG_SADDR, daddr=$TGT, ttl=64, df)"
		udp="udp(sp=dinc(10000, 10999), dp=9)"
	fi
	cat >"$f" <<TG
{
	eth(da=$TG_DMAC, sa=$TG_SMAC, type=0x0800),
	$ip,
	$udp,
	fill(0x42, 18),
}
TG
	echo "$f"
}

# tg_start CONF RATE SECONDS starts trafgen on one CPU; RATE 0 = flat out.
tg_start() {
	local rate=()
	[[ $2 != 0 ]] && rate=(-b "$2pps")
	# --no-sock-mem, --notouch-irq: leave the host's socket memory and IRQ affinity alone.
	# ip netns exec execs the command: $! is timeout, which passes our
	# SIGINT on to trafgen.
	ip netns exec "$NS_CL" timeout -s INT "$3" trafgen --dev "$TG_DEV" --conf "$1" --cpus 1 --no-sock-mem --notouch-irq --no-cpu-stats \
		"${rate[@]}" >"$WORK/trafgen.log" 2>&1 &
	TG_PID=$!
}

tg_stop() {
	kill -INT "$TG_PID" 2>/dev/null || true
	wait "$TG_PID" 2>/dev/null || true
	TG_PID=""
}

# udp_window CONF RATE: offers UDP with trafgen for DUR seconds after WARM
# and prints "received ns sent": packets counted at the real servers, the
# window in ns and packets the client's veth sent.
udp_window() {
	local c0 c1 t0 t1 s0 s1
	tg_start "$1" "$2" "$(awk -v w="$WARM" -v d="$DUR" 'BEGIN{print w+d+5}')"
	sleep "$WARM"
	s0=$(tx_packets "$NS_CL" "$TG_DEV")
	c0=$(sink_count)
	t0=$(now_ns)
	sleep "$DUR"
	c1=$(sink_count)
	t1=$(now_ns)
	s1=$(tx_packets "$NS_CL" "$TG_DEV")
	tg_stop
	echo "$((c1 - c0)) $((t1 - t0)) $((s1 - s0))"
}

# udpload_start SECONDS [RATE] offers RATE (default FIXED_PPS) with
# bench/cmd/udpload (64 flows) and sets UL_PID.
udpload_start() {
	ip netns exec "$NS_CL" "$WORK/udpload" -addr "$TGT:9" -rate "${2:-$FIXED_PPS}" \
		-d "$1s" >/dev/null 2>"$WORK/udpload.err" &
	UL_PID=$!
}

# udpload_stop stops the udpload that udpload_start started.
udpload_stop() {
	kill "$UL_PID" 2>/dev/null || true
	wait "$UL_PID" 2>/dev/null || true
	UL_PID=""
}

# udp_fixed_window [RATE]: offers RATE (default FIXED_PPS) and prints
# "received ns sent cpu_ns dir_ns dirproc_ns" like udp_window, plus the CPU
# the testbed, the director alone and the director's processes used over
# the window (cpu_snapshot).
udp_fixed_window() {
	local c0 c1 t0 t1 s0 s1 u0 u1 d0 d1 p0 p1
	udpload_start "$(awk -v w="$WARM" -v d="$DUR" 'BEGIN{print w+d+2}')" "${1:-}"
	sleep "$WARM"
	read -r u0 d0 p0 < <(cpu_snapshot) || true
	s0=$(tx_packets "$NS_CL" "$TG_DEV")
	c0=$(sink_count)
	t0=$(now_ns)
	sleep "$DUR"
	c1=$(sink_count)
	t1=$(now_ns)
	s1=$(tx_packets "$NS_CL" "$TG_DEV")
	read -r u1 d1 p1 < <(cpu_snapshot) || true
	udpload_stop
	if ! snap_ok "$u0" "$d0" "$p0" "$u1" "$d1" "$p1"; then
		echo "$((c1 - c0)) $((t1 - t0)) $((s1 - s0)) - - -"
		return 0
	fi
	echo "$((c1 - c0)) $((t1 - t0)) $((s1 - s0)) $((u1 - u0)) $((d1 - d0)) $((p1 - p0))"
}

# xdp_stats prints "id name run_cnt run_time_ns" for each XDP program
# attached to the director's veths (nothing when there is none).
xdp_stats() {
	local devs=(-dev bnd0)
	[[ $TB_LAYOUT == nat ]] && devs+=(-dev bnd1)
	nsx "$NS_DIR" "$WORK/xdpstats" "${devs[@]}"
}

# fc_counts prints govs's flow-cache misses (event fc_miss) and the
# packets its XDP program forwarded (exits tx_* and redirect_*), read from
# /metrics on its API socket; nothing for other directors.
fc_counts() {
	[[ -S $WORK/govs.sock ]] || return 0
	curl -s -m 5 --unix-socket "$WORK/govs.sock" http://govs/metrics | awk '
		/^govs_dataplane_events_total\{event="fc_miss"\}/ { m = $2 }
		/^govs_dataplane_exits_total\{reason="(tx|redirect)_/ { f += $2 }
		END { if (m != "" && f != "") printf "%.0f %.0f\n", m, f }'
}

# xdp_prog_window [flat|1m]: for a director with XDP programs, the mean
# run time of those programs per run (one run per packet that reaches the
# director), measured in place with the kernel's BPF run statistics
# switched on (kernel.bpf_stats_enabled, host-wide, restored afterwards):
# at FIXED_PPS with udpload's 64 flows (xdp_prog_ns), with "flat" as
# the udp load offers (trafgen flat out, 1k flows; udp_prog_ns), or with
# "1m" as the flows load offers (flat out, 1.1M flows; udp_prog_ns_1m,
# right after that load's window, so the flows it tracks stay tracked).
# A window of its own: the statistics cost two clock reads per run, which
# must not weigh on the CPU figures of the cost window or on udp_pps.
xdp_prog_window() {
	# tg: the trafgen flows of a flat-out window ("" for udpload's)
	local x0 x1 f0="" f1="" metric tg="" miss=udp_fc_miss_pct
	case ${1:-} in
	flat) metric=udp_prog_ns tg=1k ;;
	1m) metric=udp_prog_ns_1m tg=1m miss=udp_fc_miss_pct_1m ;;
	*) metric=xdp_prog_ns ;;
	esac
	x0=$(xdp_stats) || return 0
	[[ -n $x0 ]] || return 0
	BPF_STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1
	if [[ -n $tg ]]; then
		tg_start "$(tg_conf "$tg")" 0 "$(awk -v w="$WARM" -v d="$DUR" 'BEGIN{print w+d+5}')"
	else
		udpload_start "$(awk -v w="$WARM" -v d="$DUR" 'BEGIN{print w+d+2}')"
	fi
	sleep "$WARM"
	x0=$(xdp_stats)
	[[ -n $tg ]] && f0=$(fc_counts)
	sleep "$DUR"
	x1=$(xdp_stats)
	[[ -n $tg ]] && f1=$(fc_counts)
	sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_OLD"
	BPF_STATS_OLD=""
	if [[ -n $tg ]]; then
		tg_stop
	else
		udpload_stop
	fi
	echo "    (xdp programs: $(awk '{printf "%s%s", sep, $2; sep=", "}' <<<"$x1"))"
	record "$metric" "$(awk 'NR == FNR { c[$1] = $3; t[$1] = $4; next }
		($1 in c) { dc += $3 - c[$1]; dt += $4 - t[$1] }
		END { if (dc > 0) printf "%.0f", dt / dc }' <(echo "$x0") <(echo "$x1"))"
	# the flow cache's measured miss rate over the same window
	fc_miss_record "$miss" "$f0" "$f1"
}

# fc_miss_record METRIC F0 F1 records the flow-cache miss rate between
# two fc_counts (nothing when either is empty: not govs).
fc_miss_record() {
	[[ -n $2 && -n $3 ]] || return 0
	record "$1" "$(awk -v a="$2" -v b="$3" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		if (y[2] > x[2]) printf "%.1f", 100 * (y[1] - x[1]) / (y[2] - x[2]) }')"
}

# own_window: for a director whose forwarding logic is nftables or an XDP
# program, the CPU per packet that logic itself costs, at FIXED_PPS:
# perf samples the director's threaded-NAPI threads, and a sample counts as
# the logic's own when, walking its kernel stack from the leaf, the first
# marker met is the logic's entry (an XDP program bpf_prog_*, including the
# kernel helpers it calls; netfilter's nf_hook_slow, including conntrack and
# NAT) rather than a transmit (dev_queue_xmit, which nftables' `fwd`
# calls from inside its hook, while XDP transmits after its program
# returns). That share of the NAPI threads' CPU, plus the director's
# processes (govs's daemon), per delivered packet is dir_own_pkt_ns.
# Receive, the veth hand-over and transmit are left out for every peer:
# they are the testbed's fixed costs (see benchmarks/harness.md). A window
# of its own, since sampling costs CPU, three times as long as the others
# (own_dur): an XDP program's share is a few per cent of the NAPI
# threads' samples, 26-81 in a 3 s window, whose counting error alone
# (1/sqrt(n)) was 11-19 % of a round's figure.
own_window() {
	case $CUR_PEER in
	nft | nft-fwd | nft-snat | xdp-* | govs-xdp-*) ;;
	*) return 0 ;;
	esac
	command -v perf >/dev/null || {
		echo "    (perf not installed: no dir_own_pkt_ns)"
		return 0
	}
	local c0 c1 d0 d1 p0 p1 u0 u1 share own_dur
	own_dur=$(awk -v d="$DUR" 'BEGIN{print 3 * d}')
	udpload_start "$(awk -v w="$WARM" -v d="$own_dur" 'BEGIN{print w+d+2}')"
	sleep "$WARM"
	read -r u0 d0 p0 < <(cpu_snapshot) || true
	c0=$(sink_count)
	perf record -q -e cpu-clock -F 2999 -g -a -o "$WORK/own.data" -- sleep "$own_dur" >/dev/null 2>&1 || {
		echo "    (perf record failed: no dir_own_pkt_ns)"
		udpload_stop
		return 0
	}
	c1=$(sink_count)
	read -r u1 d1 p1 < <(cpu_snapshot) || true
	udpload_stop
	share=$(perf script -i "$WORK/own.data" -F tid,ip,sym 2>/dev/null | own_share $NAPI_DIR_PIDS)
	[[ -n ${BENCH_KEEP_PERF:-} ]] && cp "$WORK/own.data" "/tmp/own-$CUR_PEER.data"; rm -f "$WORK/own.data"
	echo "    (forwarding logic: $share of the director's NAPI samples)"
	read -r share _ <<<"$share"
	(((c1 - c0) > 0)) || return 0
	snap_ok "$d0" "$p0" "$d1" "$p1" || return 0
	# A thread or process that went away inside the window takes its
	# CPU time out of the second snapshot: no sample rather than a
	# negative one.
	if (((d1 - d0) - (p1 - p0) < 0 || (p1 - p0) < 0)); then
		echo "    (the director's threads changed inside the window: no dir_own_pkt_ns; dir Δ $((d1 - d0)) ns, processes Δ $((p1 - p0)) ns)"
		return 0
	fi
	record dir_own_pkt_ns "$(awk -v s="$share" -v k="$((d1 - d0 - (p1 - p0)))" -v p="$((p1 - p0))" -v n="$((c1 - c0))" \
		'BEGIN{printf "%.0f", (s*k + p)/n}')"
}

# own_share TID... reads `perf script -F tid,ip,sym` and prints "share own/all":
# the fraction of the samples of the given threads whose stack, from the
# leaf, meets the forwarding logic's entry before a transmit (own_window).
own_share() {
	awk -v tids="$*" '
		BEGIN { n = split(tids, t, " "); for (i = 1; i <= n; i++) want[t[i]] = 1 }
		/^ *[0-9]+ *$/ { tid = $1 + 0; mine = (tid in want); if (mine) all++; decided = 0; next }
		/^\t/ {
			if (!mine || decided) next
			sym = $2
			if (sym ~ /^bpf_prog_/ || sym == "nf_hook_slow") { own++; decided = 1 }
			else if (sym ~ /^_*dev_queue_xmit/) decided = 1
			next
		}
		END { if (all > 0) printf "%.4f %d/%d\n", own / all, own, all; else print "0 0/0" }'
}

load_udp() {
	[[ $PEER_NO_UDP == 1 ]] && return 0
	local n ns _s
	read -r n ns _s < <(udp_window "$(tg_conf 1k)" 0)
	record udp_pps "$(awk -v n="$n" -v t="$ns" 'BEGIN{printf "%.0f", n*1e9/t}')"
	xdp_prog_window flat
}

# With a UDP timeout longer than a cycle of the 1.1M flows (--udp-timeout),
# the warm-up covers two cycles at 150k packets/s (15 s), so the window
# measures flows the director already tracks: 1M concurrent flows. With
# the default 5 s timeout every packet is a new flow anyway.
load_flows() {
	[[ $PEER_NO_UDP == 1 ]] && return 0
	local n ns _s warm=$WARM
	((UDP_TIMEOUT > 10)) && WARM=15
	read -r n ns _s < <(udp_window "$(tg_conf 1m)" 0)
	WARM=$warm
	record udp_pps_1m "$(awk -v n="$n" -v t="$ns" 'BEGIN{printf "%.0f", n*1e9/t}')"
	xdp_prog_window 1m
}

# tcp_retrans prints, for every namespace of the testbed, NS=N with N
# the TCP segments it retransmitted so far (/proc/net/snmp's
# RetransSegs is per namespace): the client's, the real servers', and a
# proxy's in the director's.
tcp_retrans() {
	local ns n
	for ns in "${TB_NAMESPACES[@]}"; do
		n=$(nsx "$ns" awk '$1 == "Tcp:" { if (!c) { for (i = 2; i <= NF; i++) if ($i == "RetransSegs") c = i } else print $c }' /proc/net/snmp)
		printf '%s=%s ' "$ns" "${n:-0}"
	done
	echo
}

# tcp_stats prints, with BENCH_TCPSTAT=1, every TCP counter of every
# namespace of the testbed as NS:NAME=VALUE words (/proc/net/snmp's Tcp
# and /proc/net/netstat's TcpExt lines); nothing otherwise.
# tcp_stats_show S0 S1 prints those of S1 - S0 that name a loss, a
# retransmission, a drop or a reset, per namespace, to see where a
# load's retransmissions came from (out-of-order queueing and SACK
# counters among them: reordering shows there).
tcp_stats() {
	[[ ${BENCH_TCPSTAT:-0} == 1 ]] || return 0
	local ns
	for ns in "${TB_NAMESPACES[@]}"; do
		nsx "$ns" awk -v ns="$ns" '$1 == "Tcp:" || $1 == "TcpExt:" {
			if (!(($1) in hdr)) { hdr[$1] = 1; for (i = 2; i <= NF; i++) name[$1, i] = $i; next }
			for (i = 2; i <= NF; i++) printf "%s:%s=%s ", ns, name[$1, i], $i
		}' /proc/net/snmp /proc/net/netstat
	done
	echo
}

tcp_stats_show() {
	[[ -n $1 && -n $2 ]] || return 0
	awk -v a="$1" -v b="$2" 'BEGIN {
		k = split(a, x, " "); for (i = 1; i <= k; i++) { split(x[i], f, "="); v0[f[1]] = f[2] }
		k = split(b, y, " ")
		for (i = 1; i <= k; i++) {
			split(y[i], f, "="); d = f[2] - v0[f[1]]
			if (d > 0 && f[1] ~ /Retrans|Lost|Loss|TLP|PAWS|TimeWait|Timewait|TW|Beyond|Drop|Abort|Reset|RST|Rst|Timeout|Challenge|Overflow|Fail|Prune|Collapse|Spurious|SACK|Reorder|OFO/)
				printf "    (tcp %s %d)\n", f[1], d
		}
	}'
}

# sched_counts prints the machine's context switches (/proc/stat ctxt)
# and rescheduling IPIs (/proc/interrupts RES, all CPUs) so far: counters
# of the whole machine, not of the testbed alone, so other jobs add to
# them. sched_record PREFIX S0 S1 CONNS records PREFIX_ctxsw_pc and
# PREFIX_ipi_pc, both per connection completed between S0 and S1. On this
# guest a cross-CPU wake-up (an IPI, a VM exit to send and one to take) and
# a context switch cost microseconds, as much as a director's whole
# per-connection work, and how often they happen per connection depends on
# which processes share a CPU: two real servers' nginx against one made
# twice the switches per connection (docs/BENCHMARKS.md, twentieth
# session).
sched_counts() {
	awk '$1 == "ctxt" { c = $2 } END { printf "%s ", c }' /proc/stat
	awk '$1 == "RES:" { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i } END { print n + 0 }' /proc/interrupts
}

sched_record() {
	[[ -n $2 && -n $3 && ${4:-0} -gt 0 ]] || return 0
	local c0 i0 c1 i1
	read -r c0 i0 <<<"$2"
	read -r c1 i1 <<<"$3"
	record "$1_ctxsw_pc" "$(awk -v d="$((c1 - c0))" -v n="$4" 'BEGIN{printf "%.3f", d / n}')"
	record "$1_ipi_pc" "$(awk -v d="$((i1 - i0))" -v n="$4" 'BEGIN{printf "%.3f", d / n}')"
}

# retrans_record METRIC R0 R1 CONNS records the segments retransmitted
# between tcp_retrans's counts R0 and R1, in all namespaces, per 1,000
# connections completed, and prints the namespaces that retransmitted:
# a drop anywhere on the path shows as a retransmission (a lost SYN or
# SYN-ACK costs its connection a second), and a handful of them moves a
# connection rate more than any per-packet cost does.
retrans_record() {
	[[ -n $2 && -n $3 && ${4:-0} -gt 0 ]] || return 0
	local out
	out=$(awk -v a="$2" -v b="$3" -v n="$4" 'BEGIN {
		k = split(a, x, " "); for (i = 1; i <= k; i++) { split(x[i], f, "="); r0[f[1]] = f[2] }
		k = split(b, y, " ")
		for (i = 1; i <= k; i++) {
			split(y[i], f, "="); d = f[2] - r0[f[1]]; t += d
			if (d > 0) by = by " " f[1] " " d
		}
		printf "%.2f%s\n", 1000 * t / n, by }')
	record "$1" "${out%% *}"
	[[ $out == *" "* ]] && echo "    (retransmitted segments: ${out#* })"
	return 0
}

# load_conn: new connections per second, each carrying one tiny request.
load_conn() {
	local out f0 f1 r0 r1 s0 s1 k0 k1
	clean_sockets
	f0=$(fc_counts)
	r0=$(tcp_retrans)
	s0=$(tcp_stats)
	k0=$(sched_counts)
	out=$(nsx "$NS_CL" timeout $((DUR + 10)) wrk -t1 -c64 -d"${DUR}s" -H 'Connection: close' "http://$TGT/" 2>&1)
	k1=$(sched_counts)
	r1=$(tcp_retrans)
	f1=$(fc_counts)
	s1=$(tcp_stats)
	wrk_problems "$out"
	tcp_stats_show "$s0" "$s1"
	record conn_s "$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")"
	fc_miss_record conn_fc_miss_pct "$f0" "$f1"
	retrans_record conn_retrans_pm "$r0" "$r1" "$(awk '/ requests in / {print $1}' <<<"$out")"
	sched_record conn "$k0" "$k1" "$(awk '/ requests in / {print $1}' <<<"$out")"
}

# load_conn_raw: new connections per second from bench/cmd/connload run
# flat out with 64 workers (connect, one request, read to the end, close):
# a lighter client than wrk, so the director's share of the 2 CPUs shows
# more. Errors are printed.
load_conn_raw() {
	local out r0 r1 s0 s1 k0 k1
	clean_sockets
	r0=$(tcp_retrans)
	s0=$(tcp_stats)
	k0=$(sched_counts)
	out=$(nsx "$NS_CL" timeout $((DUR + 10)) "$WORK/connload" -addr "$TGT:80" -workers 64 -d "${DUR}s" 2>&1) || {
		echo "    (connload: $out)"
		return 0
	}
	k1=$(sched_counts)
	r1=$(tcp_retrans)
	s1=$(tcp_stats)
	tcp_stats_show "$s0" "$s1"
	(($(jq -r .errors <<<"$out") > 0)) && echo "    (connload: $(jq -r '"\(.errors) errors, first: \(.first_error)"' <<<"$out"))"
	record conn_raw_s "$(jq -r '.rate | floor' <<<"$out")"
	retrans_record conn_raw_retrans_pm "$r0" "$r1" "$(jq -r .ok <<<"$out")"
	sched_record conn_raw "$k0" "$k1" "$(jq -r .ok <<<"$out")"
}

# wrk_problems reports socket errors and non-2xx answers wrk counted.
wrk_problems() {
	local line
	while read -r line; do
		[[ -n $line ]] && echo "    (wrk: $line)"
	done < <(grep -E 'Socket errors|Non-2xx' <<<"$1" | sed 's/^ *//')
	return 0
}

# to_us converts a wrk duration (12.3us, 1.2ms, 1.0s) to microseconds.
to_us() {
	awk -v v="$1" 'BEGIN{
		if (v ~ /us$/) { sub(/us$/, "", v); m=1 } else if (v ~ /ms$/) { sub(/ms$/, "", v); m=1000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); m=1e6 } else { exit }
		printf "%.0f", v*m }'
}

# load_lat: request latency over one keep-alive connection.
load_lat() {
	local out
	out=$(nsx "$NS_CL" timeout $((DUR + 10)) wrk -t1 -c1 -d"${DUR}s" --latency "http://$TGT/" 2>&1)
	wrk_problems "$out"
	# No completed request: wrk prints zeros, which are not latencies.
	if ! awk '/requests in/ { exit !($1 > 0) }' <<<"$out"; then
		echo "    (wrk: no request completed)"
		return 0
	fi
	record lat_p50_us "$(to_us "$(awk '$1=="50%" {print $2}' <<<"$out")")"
	record lat_p99_us "$(to_us "$(awk '$1=="99%" {print $2}' <<<"$out")")"
}

# load_bulk: one iperf3 stream to real server 1 (port 5201 has one server
# in every peer, since iperf3's control and data connections must meet).
load_bulk() {
	local out
	clean_sockets
	out=$(nsx "$NS_CL" timeout $((DUR + 15)) iperf3 -c "$TGT" -p 5201 -t "$DUR" -f g 2>&1)
	record bulk_gbps "$(awk '/receiver/ { for (i=1;i<=NF;i++) if ($i=="Gbits/sec") print $(i-1) }' <<<"$out")"
}

# load_cost: CPU per packet and per new connection at a fixed offered
# rate, for the whole path (cpu_*; run.sh subtracts the no-director path of
# the same round for dir_pkt_ns, dir_conn_us) and for the director alone
# (dir_cpu_*: its processes and threaded-NAPI threads, see cpu_snapshot).
load_cost() {
	local rc=0
	((${#TB_NAPI_DEVS[@]})) && napi_threaded 1
	cost_windows || rc=$?
	((${#TB_NAPI_DEVS[@]})) && napi_threaded 0
	return "$rc"
}

cost_windows() {
	local n ns sent u d dp out ok secs p50 p99 conns u0 t0 u1 t1 d0 d1 p0 p1 lp napi=0
	if napi_resolve && [[ -n $NAPI_DIR_PIDS ]]; then
		napi=1
	fi
	if [[ $PEER_NO_UDP != 1 ]]; then
		read -r n ns sent u d dp < <(udp_fixed_window)
		[[ $u == - ]] || record dirproc_udp_pct "$(awk -v d="$dp" -v t="$ns" 'BEGIN{printf "%.3f", 100*d/t}')"
		echo "    (offered $(awk -v s="$sent" -v t="$ns" 'BEGIN{printf "%.0f", s*1e9/t}') pkt/s, delivered $(awk -v s="$n" -v t="$ns" 'BEGIN{printf "%.0f", s*1e9/t}') pkt/s)"
		if ((sent > 0 && n > 0)); then
			record fixed_loss_pct "$(awk -v n="$n" -v s="$sent" 'BEGIN{l=100*(1-n/s); if (l<0) l=0; printf "%.2f", l}')"
		fi
		if ((sent > 0 && n > 0)) && [[ $u != - ]]; then
			record cpu_pkt_ns "$(awk -v u="$u" -v n="$n" 'BEGIN{printf "%.0f", u/n}')"
			if ((napi)); then
				record dir_cpu_pkt_ns "$(awk -v d="$d" -v n="$n" 'BEGIN{printf "%.0f", d/n}')"
			fi
		fi
		xdp_prog_window
		((napi)) && own_window
	fi
	clean_sockets
	# Runs past the window and is stopped with SIGINT after it, so it is
	# alive (and its CPU time visible) at both snapshots.
	ip netns exec "$NS_CL" "$WORK/connload" -addr "$TGT:80" -rate "$FIXED_CPS" \
		-d "$((DUR + 30))s" >"$WORK/connload.json" 2>"$WORK/connload.err" &
	lp=$!
	sleep "$WARM"
	read -r u0 d0 p0 < <(cpu_snapshot) || true
	t0=$(now_ns)
	sleep "$DUR"
	t1=$(now_ns)
	read -r u1 d1 p1 < <(cpu_snapshot) || true
	kill -INT "$lp" 2>/dev/null || true
	wait "$lp" || {
		warn "connload failed: $(cat "$WORK/connload.err")"
		return 0
	}
	out=$(cat "$WORK/connload.json")
	ok=$(jq -r .ok <<<"$out")
	secs=$(jq -r .seconds <<<"$out")
	p50=$(jq -r .p50_us <<<"$out")
	p99=$(jq -r .p99_us <<<"$out")
	(($(jq -r .errors <<<"$out") > 0)) && echo "    (connload: $(jq -r '"\(.errors) errors, first: \(.first_error)"' <<<"$out"))"
	((ok > 0)) || return 0
	record newconn_p50_us "$p50"
	record newconn_p99_us "$p99"
	snap_ok "$u0" "$d0" "$p0" "$u1" "$d1" "$p1" || return 0
	record dirproc_conn_pct "$(awk -v d="$((p1 - p0))" -v t="$((t1 - t0))" 'BEGIN{printf "%.3f", 100*d/t}')"
	# Connections inside the window, from the steady completion rate.
	conns=$(awk -v ok="$ok" -v s="$secs" -v t="$((t1 - t0))" 'BEGIN{printf "%.0f", ok*(t/1e9)/s}')
	record cpu_conn_us "$(awk -v u="$((u1 - u0))" -v c="$conns" 'BEGIN{printf "%.2f", u/1000/c}')"
	if ((napi)); then
		record dir_cpu_conn_us "$(awk -v d="$((d1 - d0))" -v c="$conns" 'BEGIN{printf "%.2f", d/1000/c}')"
	fi
}
