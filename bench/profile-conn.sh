#!/usr/bin/env bash
# profile-conn.sh: where the XDP receive path spends its time while a
# govs XDP peer carries one of the harness's connection loads (wrk,
# Connection: close; or connload flat out). It runs `bench/run.sh
# --peers PEER --loads LOAD --rounds 1`, samples every CPU with perf for
# 1.5 s in the middle of the peer's window, and prints, over the samples
# whose kernel stack passes through veth_xdp_rcv_skb (the XDP path of a
# veth receive: frame copy, program, redirect), the share inside a BPF
# program, the share whose leaf is a BPF hash-table lookup
# (lookup_nulls_elem_raw) and the share in the frame copy, then, per
# command with at least 50 samples (wrk or connload, nginx, swapper =
# idle), its share of all samples and the shares of its own spent on
# the XDP path and in the program: a veth receive runs in the softirq
# of whichever process sent the frame. Shares, not rates: the machine's
# noise moves the connection rate by tens of per cent between runs, but
# not what one packet's processing is made of. Last, the program's C
# source lines whose calls out (map lookups and updates, helpers) took
# the most samples (bench/cmd/jitlines).
#
# One real server (PROFILE_SERVERS, default 1), as the bare peers use: with
# two, a balancing peer runs a second nginx on the same two CPUs and its
# profile differs from a bare peer's by that too (twice the context
# switches per connection for govs NAT against the bare forwarder, where
# one server gives the same count for both).
#
# Usage: bench/profile-conn.sh [PEER [LOAD]] (PEER: default
# govs-xdp-nat; a bare XDP peer such as xdp-tx-2way gives the same
# shares without the lines. LOAD: conn, the default, samples wrk;
# conn_raw samples connload flat out instead); needs root and perf. The
# perf data is kept in /tmp/profile-conn-PEER[-conn_raw].data, the
# program's line table beside it (.lines).
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:-govs-xdp-nat}
load=${2:-conn}
client=wrk
case $load in
conn) ;;
conn_raw) client=connload ;;
*)
	echo "profile-conn: load $load: want conn or conn_raw" >&2
	exit 2
	;;
esac
NAME=profile-conn
# shellcheck source=bench/lib/profile.sh
. bench/lib/profile.sh
data=/tmp/profile-conn-$peer.data
[[ $load == conn ]] || data=/tmp/profile-conn-$peer-$load.data
# 6 s of wrk: the line table is taken after the 1.5 s of sampling, while
# the peer still runs
profile_start --peers "$peer" --loads "$load" --rounds 1 --duration 6 --servers "${PROFILE_SERVERS:-1}"
# the peer's round starts after the no-director round's wrk
profile_wait "the run ended before $peer's round" grep -q "round 1/1: $peer" "$PROFILE_LOG"
profile_wait "no $client in $peer's round" pgrep -x "$client"
PROFILE_LINES=$data.lines
# the bare peers (xdp-fwd, xdp-tx, xdp-tx-2way) have no govs program to map
govs=0
[[ $peer == govs-* ]] && govs=1
sleep 1.2
perf record -q -e cpu-clock -F 1999 -g -a -o "$data" -- sleep 1.5 >/dev/null 2>&1
# the line table of the program sampled (profile-udp.sh says why after)
((govs)) && profile_lines_dump govs_lb
profile_end
grep -E "^ +${load}_s " "$PROFILE_LOG" | tail -1
perf script -i "$data" -F comm,ip,sym 2>/dev/null | awk -v peer="$peer" '
	function done_sample() {
		if (!n) return
		all[comm]++
		if (prog) inprog[comm]++
		if (xdp) { x++; xc[comm]++; if (prog) p++; if (cow) cw++; if (leaf == "lookup_nulls_elem_raw") l++ }
	}
	/^[^\t ]/ { done_sample(); n = 1; comm = $1; xdp = 0; prog = 0; cow = 0; leaf = ""; next }
	/skb_pp_cow_data/ { cow = 1 }
	{ if (leaf == "") leaf = $2 }
	/bpf_prog_/ { prog = 1 }
	/veth_xdp_rcv_skb/ { xdp = 1 }
	END {
		done_sample()
		if (!x) { print "profile-conn: no sample on the XDP path"; exit 1 }
		printf "%s: %d samples on the XDP path; in a BPF program %.1f %%; BPF hash lookups %.1f %%; the frame copy (skb_pp_cow_data) %.1f %%\n", peer, x, 100 * p / x, 100 * l / x, 100 * cw / x
		# by command: whose CPU the XDP path and the program are charged to
		# (a veth receive runs in the softirq of the sending process)
		for (c in all) {
			t += all[c]
			if (all[c] >= 50)
				show[c] = 1
		}
		for (c in show)
			printf "  %-12s %5.1f %% of all samples; of its own: XDP path %.1f %%, BPF program %.1f %%\n", c, 100 * all[c] / t, 100 * xc[c] / all[c], 100 * inprog[c] / all[c]
	}'
((govs)) || exit 0
echo "lines of the program whose calls (map lookups and updates, helpers) took the most samples (bench/cmd/jitlines):"
profile_lines "$data" -n 10 -leaf .
