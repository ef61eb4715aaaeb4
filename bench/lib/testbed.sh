# shellcheck shell=bash
# testbed.sh: builds and removes the namespace testbed of bench/run.sh.
#
# Layout "nat" (two arms):
#   bn-cl  bnc0 198.18.0.1/24 ── bnd0 198.18.0.2/24  bn-dir  bnd1 198.19.0.1/24 ── bnbd1 ┐
#   bn-cl  bnc1 198.19.0.2/32 (no-director leg) ─────────────────────────── bnbc1 ┤ bnbr0 (bn-br)
#   bn-rsI bnr0 198.19.0.(10+I)/24, default via 198.19.0.1 ──────────────── bnbsI ┘
# Layout "l2" (one arm, one segment):
#   bn-cl bnc0 198.18.1.1, bn-dir bnd0 198.18.1.2, bn-rsI bnr0 198.18.1.(10+I),
#   all on bnbr0 in bn-br; the VIP sits on the real servers' lo (DR rules).
# The VIP is 198.18.100.1 in both (198.18.0.0/15 is the benchmarking range of
# RFC 2544; traffic never leaves the namespaces created here).

VIP=198.18.100.1
NS_CL=bn-cl
NS_DIR=bn-dir
NS_BR=bn-br
TB_LAYOUT=""
TB_NAMESPACES=()
TB_VETHS=() # "ns/if" of every veth end

nsx() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

rs_ns() { echo "bn-rs$1"; }

mac_of() { nsx "$1" cat "/sys/class/net/$2/address"; }
ifindex_of() { nsx "$1" cat "/sys/class/net/$2/ifindex"; }

# tb_mkns creates a namespace with loopback up and IPv6 off.
tb_mkns() {
	ip netns add "$1"
	TB_NAMESPACES+=("$1")
	nsx "$1" ip link set lo up
	nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# tb_veth NS1 IF1 NS2 IF2 creates a veth pair between two namespaces.
tb_veth() {
	ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
	TB_VETHS+=("$1/$2" "$3/$4")
	nsx "$1" ip link set "$2" up
	nsx "$3" ip link set "$4" up
}

# tb_port NS IF: attach a veth end in bn-br to the bridge.
tb_port() { nsx "$NS_BR" ip link set "$1" master bnbr0 up; }

# tb_remove_stale deletes namespaces left by an earlier, killed run.
tb_remove_stale() {
	local ns
	for ns in $(ip netns list | awk '{print $1}' | grep -E '^bn-(cl|dir|br|rs[0-9]+)$'); do
		log "removing stale namespace $ns"
		tb_kill_ns "$ns"
		ip netns del "$ns" 2>/dev/null || true
	done
}

# tb_kill_ns ends every process running in a namespace this harness made.
tb_kill_ns() {
	local pids
	pids=$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')
	if [[ -n ${pids// /} ]]; then
		# shellcheck disable=SC2086
		kill $pids 2>/dev/null || true
		sleep 0.3
		pids=$(ip netns pids "$1" 2>/dev/null | tr '\n' ' ')
		# shellcheck disable=SC2086
		[[ -n ${pids// /} ]] && kill -9 $pids 2>/dev/null
	fi
	return 0
}

tb_teardown() {
	local ns
	for ns in "${TB_NAMESPACES[@]}"; do
		tb_kill_ns "$ns"
	done
	for ns in "${TB_NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null || true
	done
	TB_NAMESPACES=()
	TB_VETHS=()
	TB_LAYOUT=""
}

# tb_build LAYOUT builds the testbed with $SERVERS real servers.
tb_build() {
	TB_LAYOUT=$1
	local i ns
	tb_mkns "$NS_CL"
	tb_mkns "$NS_DIR"
	tb_mkns "$NS_BR"
	nsx "$NS_BR" ip link add bnbr0 type bridge forward_delay 0 stp_state 0
	# The bridge stands for a switch: when br_netfilter is loaded on the
	# host, keep bridged frames out of iptables/nftables (about a tenth of
	# every packet's CPU on this path otherwise), for every peer alike.
	nsx "$NS_BR" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
		net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
	nsx "$NS_BR" ip link set bnbr0 up
	for ((i = 1; i <= SERVERS; i++)); do
		tb_mkns "$(rs_ns "$i")"
	done
	case $TB_LAYOUT in
	nat) tb_build_nat ;;
	l2) tb_build_l2 ;;
	*) die "unknown layout $TB_LAYOUT" ;;
	esac
	# Director: a router that sends no redirects and checks no source route.
	local k
	for k in net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
		net.ipv4.conf.default.send_redirects=0 net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 net.ipv4.ip_local_port_range="1024 65535" \
		net.ipv4.tcp_tw_reuse=1 net.netfilter.nf_conntrack_udp_timeout="$UDP_TIMEOUT"; do
		nsx "$NS_DIR" sysctl -qw "$k"
	done
	for ns in $(nsx "$NS_DIR" ls /sys/class/net); do
		nsx "$NS_DIR" sysctl -qw "net.ipv4.conf.$ns.send_redirects=0" "net.ipv4.conf.$ns.rp_filter=0"
	done
	nsx "$NS_CL" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
	tb_offloads
	tb_rps
	tb_xdp_pass
	tb_napi
	for ((i = 1; i <= SERVERS; i++)); do
		tb_realserver "$i"
	done
	tb_wait_ready
}

tb_build_nat() {
	local i
	tb_veth "$NS_CL" bnc0 "$NS_DIR" bnd0
	tb_veth "$NS_DIR" bnd1 "$NS_BR" bnbd1
	tb_port bnbd1
	tb_veth "$NS_CL" bnc1 "$NS_BR" bnbc1
	tb_port bnbc1
	nsx "$NS_CL" ip addr add 198.18.0.1/24 dev bnc0
	nsx "$NS_CL" ip addr add 198.19.0.2/32 dev bnc1
	nsx "$NS_CL" ip route add 198.19.0.0/24 via 198.18.0.2
	nsx "$NS_CL" ip route add 198.18.100.0/24 via 198.18.0.2
	nsx "$NS_DIR" ip addr add 198.18.0.2/24 dev bnd0
	nsx "$NS_DIR" ip addr add 198.19.0.1/24 dev bnd1
	for ((i = 1; i <= SERVERS; i++)); do
		local ns
		ns=$(rs_ns "$i")
		tb_veth "$ns" bnr0 "$NS_BR" "bnbs$i"
		tb_port "bnbs$i"
		nsx "$ns" ip addr add "198.19.0.$((10 + i))/24" dev bnr0
		nsx "$ns" ip route add default via 198.19.0.1
	done
	DIR_PUB_IP=198.18.0.2
	DIR_PRIV_IP=198.19.0.1
	CL_IP=198.18.0.1
	CL_DIRECT_IP=198.19.0.2
	CL_DIRECT_DEV=bnc1
	RS_PREFIX=198.19.0.
}

tb_build_l2() {
	local i ns
	tb_veth "$NS_CL" bnc0 "$NS_BR" bnbc0
	tb_port bnbc0
	tb_veth "$NS_DIR" bnd0 "$NS_BR" bnbd0
	tb_port bnbd0
	nsx "$NS_CL" ip addr add 198.18.1.1/24 dev bnc0
	nsx "$NS_CL" ip route add "$VIP/32" via 198.18.1.2
	nsx "$NS_DIR" ip addr add 198.18.1.2/24 dev bnd0
	for ((i = 1; i <= SERVERS; i++)); do
		ns=$(rs_ns "$i")
		tb_veth "$ns" bnr0 "$NS_BR" "bnbs$i"
		tb_port "bnbs$i"
		nsx "$ns" ip addr add "198.18.1.$((10 + i))/24" dev bnr0
		# Direct routing: the VIP on lo, never answered for in ARP.
		nsx "$ns" ip addr add "$VIP/32" dev lo
		nsx "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
			net.ipv4.conf.bnr0.arp_ignore=1 net.ipv4.conf.bnr0.arp_announce=2
	done
	DIR_PUB_IP=198.18.1.2
	DIR_PRIV_IP=198.18.1.2
	# Source addresses of the SNAT peers (govs-xdp-snat, nft-snat): 16
	# director-owned addresses on the real servers' segment, put on bnd0
	# only while such a peer runs (snat_pool_add / snat_pool_del).
	SNAT_POOL_FIRST=198.18.1.200
	SNAT_POOL_LAST=198.18.1.215
	CL_IP=198.18.1.1
	CL_DIRECT_IP=198.18.1.1
	CL_DIRECT_DEV=bnc0
	RS_PREFIX=198.18.1.
}

rs_ip() { echo "${RS_PREFIX}$((10 + $1))"; }

# tb_offloads applies one offload profile to every veth, whatever the peer.
tb_offloads() {
	local v ns dev
	[[ $OFFLOAD == kernel ]] && return 0
	for v in "${TB_VETHS[@]}"; do
		ns=${v%%/*}
		dev=${v#*/}
		# tx off: no partial checksums an XDP forwarder would pass on broken;
		# tso/gso/gro off: XDP on a veth stops GSO from its peer, so nobody
		# gets 64 KB segments.
		nsx "$ns" ethtool -K "$dev" tx off tso off gso off gro off >/dev/null 2>&1 ||
			die "ethtool -K $dev failed in $ns"
	done
}

# rps_mask N prints the rps_cpus mask of CPUs 0 to N-1: 32-bit hex
# groups, the highest first, separated by commas.
rps_mask() {
	local n=$1 out="" g bits
	while ((n > 0)); do
		bits=$((n > 32 ? 32 : n))
		g=$(printf '%x' $(((1 << bits) - 1)))
		out=$g${out:+,$out}
		n=$((n - 32))
	done
	echo "$out"
}

# tb_rps (BENCH_RPS=1, a diagnostic; docs/benchmarks/harness.md): receive
# packet steering to every CPU on every veth end, so a flow's backlog
# processing stays on one CPU, as a NIC's RSS would keep it.
tb_rps() {
	local v ns dev mask
	[[ ${BENCH_RPS:-0} == 1 ]] || return 0
	mask=$(rps_mask "$(nproc)")
	for v in "${TB_VETHS[@]}"; do
		ns=${v%%/*}
		dev=${v#*/}
		nsx "$ns" sh -c "echo $mask > /sys/class/net/$dev/queues/rx-0/rps_cpus" || die "rps_cpus on $dev in $ns"
	done
}

# tb_offload_summary describes the offload state of the client's first veth.
tb_offload_summary() {
	nsx "$NS_CL" ethtool -k bnc0 | awk -F': ' '
		/^tx-checksumming|^tcp-segmentation-offload|^generic-segmentation-offload|^generic-receive-offload/ {
			sub(/ \[fixed\]/, "", $2); printf "%s%s=%s", sep, $1, $2; sep=", " }'
}

# tb_xdp_pass attaches the XDP_PASS program to every veth that receives
# frames an XDP program on the director sends (netns-testbed.md).
tb_xdp_pass() {
	case $TB_LAYOUT in
	nat)
		nsx "$NS_CL" ip link set dev bnc0 xdpdrv obj "$WORK/pass.o" sec xdp
		nsx "$NS_BR" ip link set dev bnbd1 xdpdrv obj "$WORK/pass.o" sec xdp
		XDP_PASS_ON+="${XDP_PASS_ON:+; }nat: bn-cl/bnc0, bn-br/bnbd1"
		;;
	l2)
		nsx "$NS_BR" ip link set dev bnbd0 xdpdrv obj "$WORK/pass.o" sec xdp
		XDP_PASS_ON+="${XDP_PASS_ON:+; }l2: bn-br/bnbd0"
		;;
	esac
}

# tb_napi prepares the "director-only CPU" of the cost load. The
# director's veths get GRO on, for every peer and every load: that puts a
# veth in NAPI mode without an XDP program (unlike an XDP_PASS program, GRO
# does not make veth copy every frame into a page). TB_NAPI_DEVS lists the
# veths in NAPI mode: the director's and those receiving what the director
# sends (they carry XDP_PASS). napi_threaded switches them to threaded NAPI
# for the cost windows only: each one's receive work then runs in its own
# kernel thread "napi/DEV-ID" whose CPU time /proc/PID/schedstat gives.
# (Only there: with a threaded receiver, a sender faster than the thread
# fills the veth's 256-frame ring, the sending veth stops its queue, and
# trafgen gives up with "Flushing TX_RING failed" - measured on 6.18.)
# With --napi off nothing changes here and only whole-testbed figures are
# measured.
tb_napi() {
	local v ns dev
	TB_NAPI_DEVS=()
	[[ $NAPI == threaded ]] || return 0
	case $TB_LAYOUT in
	nat) TB_NAPI_DEVS=("$NS_DIR/bnd0" "$NS_DIR/bnd1" "$NS_CL/bnc0" "$NS_BR/bnbd1") ;;
	l2) TB_NAPI_DEVS=("$NS_DIR/bnd0" "$NS_BR/bnbd0") ;;
	esac
	for v in "${TB_NAPI_DEVS[@]}"; do
		ns=${v%%/*}
		dev=${v#*/}
		if [[ $ns == "$NS_DIR" ]]; then
			nsx "$ns" ethtool -K "$dev" gro on >/dev/null 2>&1 || die "ethtool -K $dev gro on failed in $ns"
		fi
	done
	napi_threaded 1 && napi_pids "${TB_NAPI_DEVS[@]}" >/dev/null ||
		die "no threaded NAPI kernel thread for the testbed's veths (use --napi off)"
	napi_threaded 0
	NAPI_ON+="${NAPI_ON:+; }$TB_LAYOUT: ${TB_NAPI_DEVS[*]}"
}

# napi_threaded 1|0 switches threaded NAPI on or off on TB_NAPI_DEVS.
napi_threaded() {
	local v
	for v in "${TB_NAPI_DEVS[@]}"; do
		nsx "${v%%/*}" sh -c "echo $1 > /sys/class/net/${v#*/}/threaded" 2>/dev/null || {
			warn "threaded=$1 refused on $v"
			return 1
		}
	done
}

# napi_pids NS/DEV... prints the pids of the threaded-NAPI kernel threads
# of the devices (one per veth: one receive queue). Kernel threads belong to
# no namespace, so a device is found by its thread's name, napi/DEV-ID; the
# harness's device names are unique to it, and a name matched by more or
# fewer than one thread is an error.
napi_pids() {
	local v dev pids
	for v; do
		dev=${v#*/}
		pids=$(grep -lxE "napi/$dev-[0-9]+" /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3 | tr '\n' ' ')
		if (($(wc -w <<<"$pids") != 1)); then
			warn "napi kernel threads for $v: '${pids% }' (want exactly one)"
			return 1
		fi
		printf '%s ' "${pids% }"
	done
	echo
}

# tb_realserver starts nginx, an iperf3 server and the UDP sink counter.
tb_realserver() {
	local i=$1 ns dir
	ns=$(rs_ns "$i")
	dir=$WORK/rs$i
	mkdir -p "$dir/www" "$dir/tmp"
	printf 'ok\n' >"$dir/www/index.html"
	cat >"$dir/nginx.conf" <<NGX
worker_processes 1;
daemon on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	default_type text/plain;
	keepalive_requests 10000000;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	server {
		listen 80 backlog=4096;
		root $dir/www;
	}
}
NGX
	nsx "$ns" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" ||
		die "nginx did not start in $ns (see $dir/error.log)"
	nsx "$ns" iperf3 -s -D -p 5201 --pidfile "$dir/iperf3.pid" --logfile "$dir/iperf3.log"
	# Count and drop the UDP load before conntrack and socket lookup.
	nsx "$ns" nft -f - <<NFT
table ip bnsink {
	counter sink { }
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		udp dport 9 counter name "sink" drop
	}
}
NFT
}

tb_wait_ready() {
	local i t
	for ((i = 1; i <= SERVERS; i++)); do
		for ((t = 0; t < 50; t++)); do
			nsx "$(rs_ns "$i")" curl -sf -m 1 -o /dev/null "http://127.0.0.1/" && break
			sleep 0.1
		done
		((t < 50)) || die "nginx on real server $i does not answer"
	done
}

# sink_count prints the number of UDP packets the real servers dropped;
# sink_count I those of real server I alone.
sink_count() {
	local i sum=0 n
	for ((i = 1; i <= SERVERS; i++)); do
		[[ -n ${1:-} && $1 != "$i" ]] && continue
		n=$(nsx "$(rs_ns "$i")" nft list counter ip bnsink sink | awk '/packets/ {print $2}')
		sum=$((sum + ${n:-0}))
	done
	echo "$sum"
}

# clean_sockets destroys TIME_WAIT and other leftover TCP sockets in every
# namespace between rounds (PAWS rejections would collapse connection rates).
clean_sockets() {
	local ns
	for ns in "${TB_NAMESPACES[@]}"; do
		[[ $ns == "$NS_BR" ]] && continue
		nsx "$ns" ss -K -t state time-wait >/dev/null 2>&1 || true
		nsx "$ns" ss -K -t state fin-wait-1 state fin-wait-2 state close-wait state last-ack state syn-sent state syn-recv >/dev/null 2>&1 || true
	done
}

# snat_pool_add / snat_pool_del put the SNAT source pool on bnd0 and take
# it off again.
snat_pool_add() {
	local i
	for ((i = ${SNAT_POOL_FIRST##*.}; i <= ${SNAT_POOL_LAST##*.}; i++)); do
		nsx "$NS_DIR" ip addr add "${SNAT_POOL_FIRST%.*}.$i/32" dev bnd0 || return 1
	done
}
snat_pool_del() {
	local i
	for ((i = ${SNAT_POOL_FIRST##*.}; i <= ${SNAT_POOL_LAST##*.}; i++)); do
		nsx "$NS_DIR" ip addr del "${SNAT_POOL_FIRST%.*}.$i/32" dev bnd0 2>/dev/null
	done
	return 0
}

# proc_cpu_ns PID... prints the run time, in ns, of processes (kernel
# threads included) so far: the sum over their live threads of the first
# field of /proc/PID/task/TID/schedstat, exact to the nanosecond. The user +
# system times of /proc/PID/stat come in ticks of USER_HZ (10 ms), one of
# which over a 3 s window at 50k pkt/s is 67 ns per packet: too coarse for
# a daemon that uses a fraction of a per cent of a CPU. Threads that exit
# and reaped children are not counted (the directors' threads live as long
# as they do; the harness's own short-lived helpers are not what is
# measured).
proc_cpu_ns() {
	[[ -n ${*// /} ]] || {
		echo 0
		return 0
	}
	# A process may exit between being listed and being read: cat then
	# fails, which must not fail the pipeline (pipefail would end the
	# caller's subshell and leave its snapshot empty).
	# shellcheck disable=SC2046
	(cd /proc && cat $(printf '%s/task/*/schedstat ' "$@") 2>/dev/null || true) |
		awk '{ t += $1 } END { printf "%.0f\n", t }'
}

# napi_resolve sets NAPI_ALL_PIDS (threaded-NAPI threads of every veth in
# TB_NAPI_DEVS) and NAPI_DIR_PIDS (those of the director's veths); both are
# empty with --napi off or when a thread cannot be told apart. Called before
# each cost window: attaching XDP may rebuild a veth's NAPI context.
napi_resolve() {
	local v dir=()
	NAPI_ALL_PIDS=""
	NAPI_DIR_PIDS=""
	((${#TB_NAPI_DEVS[@]})) || return 0
	for v in "${TB_NAPI_DEVS[@]}"; do
		[[ ${v%%/*} == "$NS_DIR" ]] && dir+=("$v")
	done
	NAPI_ALL_PIDS=$(napi_pids "${TB_NAPI_DEVS[@]}") || {
		NAPI_ALL_PIDS=""
		return 1
	}
	NAPI_DIR_PIDS=$(napi_pids "${dir[@]}")
}

# cpu_snapshot prints three CPU times in ns, taken together:
#   total: every process in the testbed's namespaces, the ksoftirqd threads
#     (softirq work that overflowed there) and the threaded-NAPI threads of
#     the testbed's veths. Packet processing on a veth without NAPI runs in
#     softirq in the context of the sending process, so this is the whole
#     path, kernel included;
#   dir: the director alone: the processes in bn-dir and the threaded-NAPI
#     threads of bn-dir's veths (receive, forwarding, nftables, XDP and the
#     hand-over to the next veth; empty with --napi off);
#   dirproc: the processes in bn-dir alone (userspace directors).
cpu_snapshot() {
	local ns all="" dirp
	for ns in "${TB_NAMESPACES[@]}"; do
		all+=" $(ip netns pids "$ns" | tr '\n' ' ')"
	done
	all+=" $(pgrep '^ksoftirqd/' | tr '\n' ' ')"
	dirp=$(ip netns pids "$NS_DIR" | tr '\n' ' ')
	local p_all k_all p_dir k_dir
	# shellcheck disable=SC2086
	p_all=$(proc_cpu_ns $all)
	# shellcheck disable=SC2086
	k_all=$(proc_cpu_ns $NAPI_ALL_PIDS)
	# shellcheck disable=SC2086
	p_dir=$(proc_cpu_ns $dirp)
	# shellcheck disable=SC2086
	k_dir=$(proc_cpu_ns $NAPI_DIR_PIDS)
	echo "$((p_all + k_all)) $((p_dir + k_dir)) $p_dir"
}

# snap_ok VALUE... fails, with a warning, unless every value is a number: a
# snapshot that could not be read must not count as zero.
snap_ok() {
	local v
	for v; do
		[[ $v =~ ^[0-9]+$ ]] || {
			warn "a CPU snapshot could not be read ('$*'): this window's CPU figures are left out"
			return 1
		}
	done
}

# tx_packets NS DEV prints the packets a veth has sent.
tx_packets() { nsx "$1" cat "/sys/class/net/$2/statistics/tx_packets"; }
