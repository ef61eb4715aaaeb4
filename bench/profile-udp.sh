#!/usr/bin/env bash
# profile-udp.sh: what the govs XDP program spends its time on in place,
# under the harness's fixed-rate cost load. It runs `bench/run.sh --peers
# PEER --loads cost --rounds 1 --fixed-pps RATE`, samples every CPU with
# perf for 6 s from the start of the peer's round (the fixed-rate UDP
# windows; the tail of the window may reach the connection load), and
# prints, over the samples whose kernel stack passes through the govs
# program, the share of each leaf function: the program itself, or a
# kernel function it called (lookup_nulls_elem_raw is a hash-table
# bucket walk), then the program's C source lines with the most samples
# (bench/cmd/jitlines, through the kernel's line table of the JIT image).
#
# Usage: bench/profile-udp.sh [PEER [RATE]] (default govs-xdp-dr 100000);
# needs root and perf. The perf data is kept in /tmp/profile-udp-PEER.data,
# the program's line table in /tmp/profile-udp-PEER.data.lines.
set -euo pipefail
cd "$(dirname "$0")/.."
peer=${1:-govs-xdp-dr}
rate=${2:-100000}
NAME=profile-udp
# shellcheck source=bench/lib/profile.sh
. bench/lib/profile.sh
data=/tmp/profile-udp-$peer.data
profile_start --peers "$peer" --loads cost --rounds 1 --fixed-pps "$rate"
profile_wait "the run ended before $peer's round" grep -q "round 1/1: $peer" "$PROFILE_LOG"
# the program is loaded once govs has started; the windows follow
profile_wait "govs_lb never appeared in /proc/kallsyms" grep -q '_govs_lb' /proc/kallsyms
PROFILE_LINES=$data.lines
sleep 1
perf record -q -e cpu-clock -F 9999 -g -a -o "$data" -- sleep 6 >/dev/null 2>&1
# the line table of the program sampled, taken once it has run: taken
# before, it was once of another instance of govs_lb, still loaded
# (every program of the name is written)
profile_lines_dump govs_lb
profile_end
grep -E "xdp_prog_ns|dir_own_pkt_ns" "$PROFILE_LOG" || true
perf script -i "$data" -F ip,sym 2>/dev/null | awk -v peer="$peer" '
	function done_sample() {
		if (n && inprog) { leaf_n[leaf]++; total++ }
		n = 0; inprog = 0; leaf = ""
	}
	/^$/ { done_sample(); next }
	{ n++; if (n == 1) leaf = $2; if ($2 ~ /^bpf_prog_.*_govs_lb$/) inprog = 1 }
	END {
		done_sample()
		if (!total) { print "profile-udp: no sample in the govs program"; exit 1 }
		printf "%s: %d samples in the govs program; by leaf function:\n", peer, total
		for (l in leaf_n)
			printf "  %5.1f %%  %s\n", 100 * leaf_n[l] / total, l | "sort -rn"
	}'
echo "source lines of the program where its samples were taken (bench/cmd/jitlines):"
profile_lines "$data" -n 15
