#!/usr/bin/env bash
# bench/run.sh: compare govs with the directors users would pick instead, on
# one network-namespace testbed, in one run. See docs/benchmarks/harness.md.
#
# Usage: bench/run.sh [--quick] [--peers LIST] [--loads LIST] [options]
#        bench/run.sh --selftest
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
# shellcheck source=lib/testbed.sh
. "$BENCH_DIR/lib/testbed.sh"
# shellcheck source=lib/peers.sh
. "$BENCH_DIR/lib/peers.sh"
# shellcheck source=lib/loads.sh
. "$BENCH_DIR/lib/loads.sh"

usage() {
	cat <<USAGE
usage: bench/run.sh [--quick] [--peers LIST] [--loads LIST] [options]
       bench/run.sh --selftest

Builds the namespace testbed (prefix bn-), runs every load through every
peer, alternating peers round by round, prints medians and ratios against
kernel forwarding and writes bench/results/<date>.md. Needs root.

  --quick           1 round, 1 s per load (smoke run, ~3 min)
  --selftest        build and tear down both layouts, one request and one
                    UDP burst through every available peer, exit 0 (<60 s)
  --peers LIST      comma-separated, default: all. "none" (no director,
                    needed for the director's own cost) is always added.
                    $ALL_PEERS
  --loads LIST      comma-separated subset of: ${ALL_LOADS// /,}
  --rounds N        rounds (default 3; quick 1)
  --duration S      seconds measured per load (whole seconds; default 3, quick 1)
  --servers N       real servers (default 2)
  --fixed-pps N     offered UDP rate for the cost measurement (default 50000)
  --fixed-cps N     offered connection rate for the cost measurement (default 1000)
  --offload MODE    uniform (default: tx/tso/gso/gro off on every veth) or
                    kernel (leave the defaults; XDP peers then see partial
                    checksums)
  --napi MODE       threaded (default: GRO on the director's veths, and
                    threaded NAPI on every NAPI veth during the cost load,
                    for the director-only CPU figures) or off (neither)
  --xdp-mode MODE   native (default) or generic: how every XDP peer on the
                    director (xdp-fwd, xdp-tx*, govs-xdp-*) attaches. On
                    veth, native XDP copies every cloned (TCP) frame into
                    a page and hands XDP_TX frames to the peer's NAPI;
                    generic runs on the socket buffer (a cloned one's
                    head copied) and transmits it
  --udp-timeout S   UDP flow timeout of every director (default 5: the
                    entries of one peer are gone before the next; with a
                    value above the 1M-flow load's cycle, about 5-8 s
                    here, that load measures established flows instead
                    of new ones)
  --out FILE        markdown report (default bench/results/<UTC date>.md)
USAGE
}

log() { printf '%s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

QUICK=0
SELFTEST=0
PEERS=${ALL_PEERS// /,}
LOADS=${ALL_LOADS// /,}
ROUNDS=""
DUR=""
SERVERS=2
FIXED_PPS=50000
FIXED_CPS=1000
OFFLOAD=uniform
NAPI=threaded
XDP_MODE=native
UDP_TIMEOUT=5
OUT=""
ARGS="$*"

while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--selftest) SELFTEST=1 ;;
	--peers) PEERS=$2 && shift ;;
	--loads) LOADS=$2 && shift ;;
	--rounds) ROUNDS=$2 && shift ;;
	--udp-timeout) UDP_TIMEOUT=$2 && shift ;;
	--duration) DUR=$2 && shift ;;
	--servers) SERVERS=$2 && shift ;;
	--fixed-pps) FIXED_PPS=$2 && shift ;;
	--fixed-cps) FIXED_CPS=$2 && shift ;;
	--offload) OFFLOAD=$2 && shift ;;
	--napi) NAPI=$2 && shift ;;
	--xdp-mode) XDP_MODE=$2 && shift ;;
	--out) OUT=$2 && shift ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
	shift
done

if ((QUICK)); then
	ROUNDS=${ROUNDS:-1}
	DUR=${DUR:-1}
	WARM=0.5
else
	ROUNDS=${ROUNDS:-3}
	DUR=${DUR:-3}
	WARM=1
fi
[[ $DUR =~ ^[1-9][0-9]*$ ]] || die "--duration must be whole seconds"
[[ $OFFLOAD == uniform || $OFFLOAD == kernel ]] || die "--offload must be uniform or kernel"
[[ $NAPI == threaded || $NAPI == off ]] || die "--napi must be threaded or off"
case $XDP_MODE in
native) XDP_ATTACH=xdpdrv ;;
generic) XDP_ATTACH=xdpgeneric ;;
*) die "--xdp-mode must be native or generic" ;;
esac
((SERVERS >= 1 && SERVERS <= 8)) || die "--servers must be 1..8"
for l in ${LOADS//,/ }; do
	[[ " $ALL_LOADS " == *" $l "* ]] || die "unknown load $l (have: $ALL_LOADS)"
done
for p in ${PEERS//,/ }; do
	peer_layout "$p" >/dev/null || die "unknown peer $p (have: $ALL_PEERS)"
done

(($(id -u) == 0)) || die "needs root (network namespaces, XDP, nftables)"
for t in ip ethtool nft trafgen wrk iperf3 nginx curl clang jq go ss timeout; do
	if ! command -v "$t" >/dev/null; then
		log "installing what the benchmarks need (scripts/setup.sh)"
		bash "$REPO_DIR/scripts/setup.sh" >&2 || die "scripts/setup.sh failed"
		break
	fi
done
for t in ip ethtool nft trafgen wrk iperf3 nginx curl clang jq go ss timeout; do
	command -v "$t" >/dev/null || die "missing tool: $t (scripts/setup.sh installs the Debian packages)"
done

WORK=$(mktemp -d /tmp/bn-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers run unprivileged and serve from here
TG_PID=""
UL_PID=""
GOVS_PID=""
BPF_STATS_OLD=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local pid
	for pid in "${TG_PID:-}" "${UL_PID:-}" "${GOVS_PID:-}"; do
		[[ -z $pid ]] || kill "$pid" 2>/dev/null || true
	done
	# The BPF run statistics are host-wide: put the old setting back.
	[[ -z ${BPF_STATS_OLD:-} ]] || sysctl -qw kernel.bpf_stats_enabled="$BPF_STATS_OLD" || true
	tb_teardown
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# --- tools ----------------------------------------------------------------
prepare() {
	log "building helpers in $WORK"
	(cd "$REPO_DIR" && go build -o "$WORK/connload" ./bench/cmd/connload &&
		go build -o "$WORK/udpload" ./bench/cmd/udpload &&
		go build -o "$WORK/xdpstats" ./bench/cmd/xdpstats &&
		go build -o "$WORK/benchreport" ./bench/cmd/benchreport) || die "go build of bench/cmd failed"
	# shellcheck disable=SC2046
	clang $(bpf_cflags) -c "$BENCH_DIR/xdp/pass.c" -o "$WORK/pass.o" || die "clang: pass.c"
	GOVS_BIN=""
	GOVS_WHY=""
	if [[ -n ${BENCH_GOVS_BIN:-} ]]; then
		GOVS_BIN=$BENCH_GOVS_BIN
	elif [[ ",$PEERS," != *,govs-* ]]; then
		GOVS_WHY="not requested"
	elif [[ ! -d $REPO_DIR/cmd/govs ]]; then
		GOVS_WHY="no ./cmd/govs in $REPO_DIR"
	elif ! (cd "$REPO_DIR" && timeout 300 go build -o "$WORK/govs" ./cmd/govs) >"$WORK/govs-build.log" 2>&1; then
		GOVS_WHY="go build ./cmd/govs failed: $(head -n 3 "$WORK/govs-build.log" | tr '\n' ' ')"
	elif [[ $("$WORK/govs" run -h 2>&1 || true) != *-dataplane* ]]; then
		GOVS_WHY="govs has no 'run' command with --dataplane yet"
	else
		GOVS_BIN=$WORK/govs
	fi
}

# peers_of LAYOUT sets LAYOUT_PEERS to the requested peers of a layout
# that can run, with "none" first, and records why the others cannot.
peers_of() {
	local p why out="none"
	for p in ${PEERS//,/ }; do
		[[ $p == none ]] && continue
		[[ $(peer_layout "$p") == "$1" ]] || continue
		if why=$(peer_check "$p"); then
			out+=" $p"
		else
			log "skip $p: $why"
			SKIPPED+=("$p: $why")
		fi
	done
	LAYOUT_PEERS=$out
}

# --- selftest ---------------------------------------------------------------
# ip_forwarded prints the director kernel's forwarded-datagram counter.
ip_forwarded() {
	nsx "$NS_DIR" awk '/^Ip:/ { if (!h) { for (i=1;i<=NF;i++) if ($i=="ForwDatagrams") c=i; h=1 } else print $c }' /proc/net/snmp
}

selftest_peer() {
	local p=$1 n0 n1 f0 i
	local -a r0=()
	if ! peer_up "$p"; then
		log "FAIL $p: setup failed"
		peer_down "$p"
		return 1
	fi
	if ! nsx "$NS_CL" curl -sf -m 2 -o /dev/null "http://$TGT/"; then
		log "FAIL $p: no HTTP answer from $TGT"
		peer_down "$p"
		return 1
	fi
	if [[ $PEER_NO_UDP != 1 ]]; then
		f0=$(ip_forwarded)
		n0=$(sink_count)
		for ((i = 1; i <= SERVERS; i++)); do
			r0[i]=$(sink_count "$i")
		done
		nsx "$NS_CL" trafgen --dev "$TG_DEV" --conf "$(tg_conf 1k)" --cpus 1 --no-sock-mem --notouch-irq --no-cpu-stats -n 100 >/dev/null 2>&1
		sleep 0.2
		n1=$(sink_count)
		if ((n1 - n0 < 100)); then
			log "FAIL $p: $((n1 - n0)) of 100 UDP packets reached the real servers"
			peer_down "$p"
			return 1
		fi
		# A balancing peer must spread the 100 flows over every real server.
		if [[ ! $p =~ ^(none|kfwd|kfwd-dr|kfwd-2way|xdp-fwd|xdp-tx|xdp-tx-2way)$ ]]; then
			for ((i = 1; i <= SERVERS; i++)); do
				if (($(sink_count "$i") == r0[i])); then
					log "FAIL $p: real server $i received none of the 100 UDP flows"
					peer_down "$p"
					return 1
				fi
			done
		fi
		# An XDP forwarder must not leave the packets to the kernel's router.
		if [[ $p == *xdp* || $p == nft-fwd ]] && (($(ip_forwarded) - f0 >= 100)); then
			log "FAIL $p: the director's kernel forwarded the packets, not XDP"
			peer_down "$p"
			return 1
		fi
	fi
	peer_down "$p"
	log "ok   $p ($TB_LAYOUT)"
}

selftest() {
	local layout p fails=0
	for layout in nat l2; do
		peers_of "$layout"
		tb_build "$layout"
		for p in $LAYOUT_PEERS; do
			selftest_peer "$p" || fails=$((fails + 1))
		done
		tb_teardown
	done
	((fails == 0)) || die "selftest: $fails peer(s) failed"
	log "selftest passed"
}

# --- benchmark --------------------------------------------------------------
bench_layout() {
	local layout=$1 peers r p l
	peers_of "$layout"
	peers=$LAYOUT_PEERS
	[[ $peers == none ]] && {
		log "layout $layout: no peer to compare, skipped"
		return 0
	}
	log "== layout $layout: building testbed ($SERVERS real servers)"
	tb_build "$layout"
	OFFLOAD_DESC=$(tb_offload_summary)
	for ((r = 1; r <= ROUNDS; r++)); do
		for p in $peers; do
			CUR_PEER=$p
			CUR_ROUND=$r
			log "-- $layout round $r/$ROUNDS: $p"
			if ! peer_up "$p"; then
				warn "$p: setup failed in round $r, no samples"
				peer_down "$p"
				continue
			fi
			if ! nsx "$NS_CL" curl -sf -m 2 -o /dev/null "http://$TGT/"; then
				warn "$p: no HTTP answer from $TGT in round $r, no samples"
				peer_down "$p"
				continue
			fi
			for l in ${LOADS//,/ }; do
				"load_$l" || warn "$p: load $l failed in round $r"
			done
			peer_down "$p"
		done
	done
	tb_teardown
}

main() {
	SKIPPED=()
	tb_remove_stale
	prepare
	if ((SELFTEST)); then
		selftest
		return
	fi
	FULL_RUN=0
	[[ -z $OUT && $PEERS == "${ALL_PEERS// /,}" && $LOADS == "${ALL_LOADS// /,}" ]] && FULL_RUN=1
	RAW=$WORK/raw.tsv
	: >"$RAW"
	local start end date
	start=$(date +%s)
	date=$(date -u +%Y-%m-%dT%H%MZ)
	LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
	OFFLOAD_DESC="kernel defaults"
	XDP_PASS_ON=""
	NAPI_ON=""
	bench_layout nat
	bench_layout l2
	end=$(date +%s)
	OUT=${OUT:-$BENCH_DIR/results/$date.md}
	mkdir -p "$(dirname "$OUT")"
	{
		printf 'command\t%s%s%sbench/run.sh %s\n' "${GOVS_BENCH_TABLE:+GOVS_BENCH_TABLE=$GOVS_BENCH_TABLE }" \
			"${BENCH_RPS:+BENCH_RPS=$BENCH_RPS }" "${BENCH_TCPSTAT:+BENCH_TCPSTAT=$BENCH_TCPSTAT }" "$ARGS"
		printf 'date\t%s (%d s)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$((end - start))"
		printf 'kernel\t%s, %s CPUs, load average (1/5/15 min) at start %s, at end %s\n' "$(uname -r)" "$(nproc)" "$LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)"
		printf 'versions\t%s; %s; %s; %s\n' "$(haproxy -v | head -n1 | cut -d' ' -f1-3)" "$(nft --version)" \
			"$(trafgen -v 2>&1 | head -n1 | sed 's/,.*//')" "$(wrk -v 2>&1 | head -n1 | cut -d' ' -f1-2)"
		printf 'method\t%s round(s), peers alternated in each round, %s s per load after %s s warm-up, %s real servers; UDP flows time out after %s s in every director (kernel peers: nf_conntrack_udp_timeout; govs: lvs_timeouts udp); govs connection table %s entries%s\n' \
			"$ROUNDS" "$DUR" "$WARM" "$SERVERS" "$UDP_TIMEOUT" "${GOVS_BENCH_TABLE:-2097152}" \
			"$([[ -z ${GOVS_BENCH_TABLE:-} ]] && echo ' (2^21, holds the 1.1M-flow load)' || echo ' (GOVS_BENCH_TABLE)')"
		printf 'offloads\t%s on every veth (%s); XDP_PASS program on %s\n' "$OFFLOAD" "$OFFLOAD_DESC" "${XDP_PASS_ON:-none}"
		if [[ $NAPI == threaded ]]; then
			printf 'napi\tGRO on the director'"'"'s veths (bn-dir/bnd*) for every peer; threaded NAPI during the cost windows on %s\n' "${NAPI_ON:-none}"
		else
			printf 'napi\toff (--napi off): no director-only CPU figures\n'
		fi
		printf 'xdp\tthe director'"'"'s XDP peers attach in %s mode (--xdp-mode)\n' "$XDP_MODE"
		if [[ ${BENCH_RPS:-0} == 1 ]]; then
			printf 'rps\tBENCH_RPS=1: receive packet steering to every CPU on every veth end (a diagnostic: it changes the lab, and every peer'"'"'s rates)\n'
		fi
		printf 'snat\tgovs-xdp-snat and nft-snat translate sources to the same pool, %s-%s (16 addresses on bn-dir/bnd0)\n' "198.18.1.200" "198.18.1.215"
		printf 'cost\tfixed %s UDP pkt/s (udpload, 64 flows) and %s new conn/s (connload). Path CPU = user+system time of every process in the bn- namespaces + ksoftirqd + the threaded-NAPI threads of the testbed'"'"'s veths; director-only CPU (dir_cpu_*) = processes in bn-dir + the NAPI threads of bn-dir'"'"'s veths; xdp_prog_ns = run time per run of the XDP programs on bn-dir'"'"'s veths (kernel.bpf_stats_enabled, in a separate window at the same rate; udp_prog_ns the same in a second window of the udp load, with govs'"'"'s flow-cache miss rate udp_fc_miss_pct); dir_own_pkt_ns = the forwarding logic alone (nftables hooks or XDP program, their transmit left out) by perf samples of the director'"'"'s NAPI threads, plus its processes, in a third window at the same rate, three times as long\n' "$FIXED_PPS" "$FIXED_CPS"
		for s in "${SKIPPED[@]}"; do
			printf 'skipped\t%s\n' "$s"
		done
		printf 'noise\tshared 2-CPU machine; other jobs may run at the same time: only ratios within this run mean something\n'
	} >"$WORK/meta.tsv"
	cp "$RAW" "${OUT%.md}.tsv"
	"$WORK/benchreport" -raw "$RAW" -meta "$WORK/meta.tsv" -md "$OUT"
	log ""
	log "report: $OUT (raw samples: ${OUT%.md}.tsv)"
	# A full run also rewrites the harness section of docs/BENCHMARKS.md
	# (between its bench:begin/bench:end markers).
	# Only a full run does: every peer, every load, the default report path
	# and UDP timeout.
	local doc=$REPO_DIR/docs/BENCHMARKS.md
	if ((!QUICK && FULL_RUN && UDP_TIMEOUT == 5)) && [[ ${BENCH_RPS:-0} != 1 && -f $doc ]] && grep -q '<!-- bench:begin -->' "$doc"; then
		awk -v report="$OUT" -v rel="${OUT#"$REPO_DIR"/}" '
			/<!-- bench:begin -->/ { print; print ""; print "Latest full run, written by `bench/run.sh` (report: [" rel "](../" rel ")):"; print "";
				while ((getline line < report) > 0) { if (line ~ /^# /) continue; sub(/^## /, "### ", line); print line }
				skip = 1; next }
			/<!-- bench:end -->/ { skip = 0 }
			!skip { print }' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
		log "updated $doc"
	fi
	return 0
}

# One line, so that bash has read it whole before main runs.
main; exit
