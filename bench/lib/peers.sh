# shellcheck shell=bash
# peers.sh: the directors bench/run.sh compares, each set up on bn-dir and
# removed again after its loads.
#
# Every peer defines:
#   peer_layout_P    prints the layout it runs in (nat or l2)
#   peer_check_P     returns non-zero with a reason on stdout when it cannot run
#   peer_up_P        sets it up and sets TGT (address the loads go to)
#   peer_down_P      removes it
# and may set PEER_NO_UDP=1 when it does not forward UDP.

ALL_PEERS="none kfwd haproxy haproxy-l2 nft xdp-fwd ipvs govs-proxy govs-xdp-nat kfwd-dr kfwd-2way nft-fwd xdp-tx xdp-tx-2way ipvs-dr govs-xdp-dr govs-xdp-tun nft-snat govs-xdp-snat"

peer_fn() { echo "peer_$1_${2//-/_}"; }

peer_layout() {
	case $1 in
	none) echo both ;;
	kfwd | haproxy | nft | xdp-fwd | ipvs | govs-proxy | govs-xdp-nat) echo nat ;;
	haproxy-l2 | kfwd-dr | kfwd-2way | nft-fwd | xdp-tx | xdp-tx-2way | ipvs-dr | govs-xdp-dr | govs-xdp-tun | nft-snat | govs-xdp-snat) echo l2 ;;
	*) return 1 ;;
	esac
}

# Defaults for the trafgen frame: leave through the client's main veth
# toward the director.
peer_defaults() {
	PEER_NO_UDP=0
	TG_DEV=bnc0
	TG_SADDR=$CL_IP
	TG_DMAC=$(mac_of "$NS_DIR" bnd0)
	TG_SMAC=$(mac_of "$NS_CL" bnc0)
}

peer_check() {
	local fn
	fn=$(peer_fn check "$1")
	declare -F "$fn" >/dev/null || {
		echo "unknown peer"
		return 1
	}
	"$fn"
}

peer_up() {
	peer_defaults
	"$(peer_fn up "$1")"
}

peer_down() { "$(peer_fn down "$1")" || true; }

# --- none: client straight to real server 1, no director in the path ----
peer_check_none() { return 0; }
peer_up_none() {
	TGT=$(rs_ip 1)
	TG_DEV=$CL_DIRECT_DEV
	TG_SADDR=$CL_DIRECT_IP
	TG_SMAC=$(mac_of "$NS_CL" "$CL_DIRECT_DEV")
	TG_DMAC=$(mac_of "$(rs_ns 1)" bnr0)
	if [[ $TB_LAYOUT == nat ]]; then
		nsx "$NS_CL" ip route replace "$TGT/32" dev bnc1 src "$CL_DIRECT_IP"
	else
		# DR real servers hold the VIP: send it to real server 1 directly.
		TGT=$VIP
		nsx "$NS_CL" ip route replace "$VIP/32" via "$(rs_ip 1)"
	fi
}
peer_down_none() {
	if [[ $TB_LAYOUT == nat ]]; then
		nsx "$NS_CL" ip route del "$(rs_ip 1)/32" dev bnc1
	else
		nsx "$NS_CL" ip route replace "$VIP/32" via "$DIR_PUB_IP"
	fi
}

# --- (a) kfwd: plain kernel forwarding to real server 1 (NAT layout) ------
peer_check_kfwd() { return 0; }
peer_up_kfwd() { TGT=$(rs_ip 1); }
peer_down_kfwd() { :; }

# --- (a') kfwd-dr: kernel routes the VIP to real server 1 (L2 layout) ------
peer_check_kfwd_dr() { return 0; }
peer_up_kfwd_dr() {
	TGT=$VIP
	nsx "$NS_DIR" ip route replace "$VIP/32" via "$(rs_ip 1)"
}
peer_down_kfwd_dr() { nsx "$NS_DIR" ip route del "$VIP/32"; }

# --- (a'') kfwd-2way: kfwd-dr, and real server 1 answers through the
# director too (L2 layout). The director's kernel forwards both directions,
# as many packets as a SNAT director handles, where kfwd-dr sees only the
# client's half. ---------------------------------------------------------------
peer_check_kfwd_2way() { return 0; }
peer_up_kfwd_2way() {
	peer_up_kfwd_dr || return 1
	nsx "$(rs_ns 1)" ip route replace "$CL_IP/32" via "$DIR_PRIV_IP"
}
peer_down_kfwd_2way() {
	nsx "$(rs_ns 1)" ip route del "$CL_IP/32"
	peer_down_kfwd_dr
}

# --- (b) haproxy: mode tcp, one thread per core ---------------------------
peer_check_haproxy() {
	command -v haproxy >/dev/null || {
		echo "haproxy not installed (apt-get install haproxy)"
		return 1
	}
}
peer_up_haproxy() {
	local cfg=$WORK/haproxy.cfg i
	TGT=$VIP
	PEER_NO_UDP=1
	nsx "$NS_DIR" ip addr add "$VIP/32" dev lo
	{
		cat <<CFG
global
	nbthread $(nproc)
	maxconn 8000
	pidfile $WORK/haproxy.pid
defaults
	mode tcp
	timeout connect 5s
	timeout client 30s
	timeout server 30s
frontend web
	bind $VIP:80
	default_backend web
backend web
	balance roundrobin
CFG
		for ((i = 1; i <= SERVERS; i++)); do
			printf '\tserver rs%d %s:80\n' "$i" "$(rs_ip "$i")"
		done
		cat <<CFG
frontend bulk
	bind $VIP:5201
	default_backend bulk
backend bulk
	server rs1 $(rs_ip 1):5201
CFG
	} >"$cfg"
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	nsx "$NS_DIR" haproxy -q -D -f "$cfg" || return 1
}
peer_down_haproxy() {
	[[ -s $WORK/haproxy.pid ]] && kill "$(cat "$WORK/haproxy.pid")" 2>/dev/null
	sleep 0.2
	rm -f "$WORK/haproxy.pid"
	nsx "$NS_DIR" ip addr del "$VIP/32" dev lo
}

# --- (b') haproxy-l2: the same HAProxy in the l2 layout, so that the l2
# govs peers (DR, TUN, SNAT) are paired with it round by round. The real
# servers answer the director's address on the one segment. ----------------
peer_check_haproxy_l2() { peer_check_haproxy; }
peer_up_haproxy_l2() { peer_up_haproxy; }
peer_down_haproxy_l2() { peer_down_haproxy; }

# --- (c) nft: DNAT balancing the way kube-proxy's nftables mode does -------
peer_check_nft() {
	command -v nft >/dev/null || {
		echo "nft not installed (apt-get install nftables)"
		return 1
	}
}
peer_up_nft() {
	TGT=$VIP
	nft_dnat bnlb ""
}
peer_down_nft() { nsx "$NS_DIR" nft delete table ip bnlb; }

# nft_dnat TABLE EXTRA loads the DNAT balancing of the nft peer into table
# ip TABLE of the director, with EXTRA (more chains) appended.
nft_dnat() {
	local i tcpmap="" udpmap="" eps=""
	for ((i = 1; i <= SERVERS; i++)); do
		tcpmap+="$((i - 1)) : goto ep-$i, "
		udpmap+="$((i - 1)) : $(rs_ip "$i"), "
		eps+="	chain ep-$i { dnat to $(rs_ip "$i"); }"$'\n'
	done
	# TCP 80: one chain per endpoint picked with numgen random (kube-proxy);
	# UDP 9: jhash of the flow picks the endpoint; TCP 5201: real server 1.
	nsx "$NS_DIR" nft -f - <<NFT
table ip $1 {
$eps
	chain svc-web {
		numgen random mod $SERVERS vmap { ${tcpmap%, } }
	}
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr $VIP tcp dport 80 goto svc-web
		ip daddr $VIP tcp dport 5201 dnat to $(rs_ip 1)
		ip daddr $VIP udp dport 9 dnat to jhash ip saddr . udp sport mod $SERVERS map { ${udpmap%, } }
	}
$2
}
NFT
}

# --- (c') nft-fwd: nftables netdev forwarding, the kernel DR director ------
# An ingress hook on bnd0 gives frames for the VIP a real server's MAC and
# sends them back out of bnd0 (fwd), before the IP stack: no conntrack, no
# routing, no TTL update - the nftables counterpart of xdp-tx, with
# balancing. Stateless, so TCP is balanced like UDP by a hash of the flow
# (numgen random per packet would split a connection).
peer_check_nft_fwd() { peer_check_nft; }
peer_up_nft_fwd() {
	local i macs="" dmac
	TGT=$VIP
	dmac=$(mac_of "$NS_DIR" bnd0)
	for ((i = 1; i <= SERVERS; i++)); do
		macs+="$((i - 1)) : $(mac_of "$(rs_ns "$i")" bnr0), "
	done
	macs="{ ${macs%, } }"
	nsx "$NS_DIR" nft -f - <<NFT
table netdev bnfwd {
	chain ingress {
		type filter hook ingress device "bnd0" priority 0; policy accept;
		ip daddr $VIP tcp dport 80 ether saddr set $dmac ether daddr set jhash ip saddr . tcp sport mod $SERVERS map $macs fwd to "bnd0"
		ip daddr $VIP tcp dport 5201 ether saddr set $dmac ether daddr set $(mac_of "$(rs_ns 1)" bnr0) fwd to "bnd0"
		ip daddr $VIP udp dport 9 ether saddr set $dmac ether daddr set jhash ip saddr . udp sport mod $SERVERS map $macs fwd to "bnd0"
	}
}
NFT
}
peer_down_nft_fwd() { nsx "$NS_DIR" nft delete table netdev bnfwd; }

# --- (c'') nft-snat: nftables DNAT + source NAT, one arm ------------------
# The nft peer's DNAT balancing plus a source NAT of the balanced
# connections to the pool govs-xdp-snat uses (conntrack picks the address
# and port), so the real servers answer the director without a route
# through it: the kernel's way to do what lb_kind SNAT does.
peer_check_nft_snat() { peer_check_nft; }
peer_up_nft_snat() {
	TGT=$VIP
	snat_pool_add || return 1
	nft_dnat bnsnat "	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ct status dnat snat to $SNAT_POOL_FIRST-$SNAT_POOL_LAST
	}"
}
peer_down_nft_snat() {
	nsx "$NS_DIR" nft delete table ip bnsnat
	snat_pool_del
}

# --- (d) xdp-fwd / xdp-tx: do-nothing XDP programs -------------------------
bpf_cflags() { echo "-O2 -g -target bpf -I/usr/include/$(uname -m)-linux-gnu -I$BENCH_DIR/xdp"; }
mac_bytes() { echo "0x${1//:/,0x}"; }
ip_u32() {
	local IFS=.
	# shellcheck disable=SC2086
	set -- $1
	printf '0x%02x%02x%02x%02x' "$1" "$2" "$3" "$4"
}
peer_check_xdp_fwd() {
	command -v clang >/dev/null || {
		echo "clang not installed (apt-get install clang libbpf-dev)"
		return 1
	}
}
peer_up_xdp_fwd() {
	TGT=$(rs_ip 1)
	# shellcheck disable=SC2046
	clang $(bpf_cflags) -DPUB_IF="$(ifindex_of "$NS_DIR" bnd0)" -DPRIV_IF="$(ifindex_of "$NS_DIR" bnd1)" \
		-DRS_IP="$(ip_u32 "$(rs_ip 1)")" -DDIR_PRIV_IP="$(ip_u32 "$DIR_PRIV_IP")" \
		-DRS_MAC="$(mac_bytes "$(mac_of "$(rs_ns 1)" bnr0)")" -DCL_MAC="$(mac_bytes "$(mac_of "$NS_CL" bnc0)")" \
		-DPUB_MAC="$(mac_bytes "$(mac_of "$NS_DIR" bnd0)")" -DPRIV_MAC="$(mac_bytes "$(mac_of "$NS_DIR" bnd1)")" \
		-c "$BENCH_DIR/xdp/fwd.c" -o "$WORK/fwd.o" || return 1
	nsx "$NS_DIR" ip link set dev bnd0 "$XDP_ATTACH" obj "$WORK/fwd.o" sec xdp &&
		nsx "$NS_DIR" ip link set dev bnd1 "$XDP_ATTACH" obj "$WORK/fwd.o" sec xdp
}
peer_down_xdp_fwd() {
	nsx "$NS_DIR" ip link set dev bnd0 "$XDP_ATTACH" off
	nsx "$NS_DIR" ip link set dev bnd1 "$XDP_ATTACH" off
}
peer_check_xdp_tx() { peer_check_xdp_fwd; }
peer_up_xdp_tx() {
	TGT=$VIP
	# shellcheck disable=SC2046
	clang $(bpf_cflags) -DVIP="$(ip_u32 "$VIP")" \
		-DRS_MAC="$(mac_bytes "$(mac_of "$(rs_ns 1)" bnr0)")" -DDIR_MAC="$(mac_bytes "$(mac_of "$NS_DIR" bnd0)")" \
		"$@" -c "$BENCH_DIR/xdp/bounce.c" -o "$WORK/bounce.o" || return 1
	nsx "$NS_DIR" ip link set dev bnd0 "$XDP_ATTACH" obj "$WORK/bounce.o" sec xdp
}
peer_down_xdp_tx() { nsx "$NS_DIR" ip link set dev bnd0 "$XDP_ATTACH" off; }
# xdp-tx-2way: xdp-tx, and real server 1 answers through the director, whose
# program bounces the replies to the client: the ceiling for the packets of
# a SNAT director (kfwd-2way is its kernel counterpart).
peer_check_xdp_tx_2way() { peer_check_xdp_fwd; }
peer_up_xdp_tx_2way() {
	peer_up_xdp_tx -DCL_IP="$(ip_u32 "$CL_IP")" -DCL_MAC="$(mac_bytes "$(mac_of "$NS_CL" bnc0)")" || return 1
	nsx "$(rs_ns 1)" ip route replace "$CL_IP/32" via "$DIR_PRIV_IP"
}
peer_down_xdp_tx_2way() {
	nsx "$(rs_ns 1)" ip route del "$CL_IP/32"
	peer_down_xdp_tx
}

# --- (e) ipvs / ipvs-dr: kernel IPVS through ipvsadm -----------------------
peer_check_ipvs() {
	if [[ ! -e /proc/net/ip_vs ]] && ! modprobe -q ip_vs 2>/dev/null; then
		echo "this kernel has no IPVS (CONFIG_IP_VS unset, no ip_vs module): IPVS only runs in a VM here"
		return 1
	fi
	command -v ipvsadm >/dev/null || {
		echo "kernel has ip_vs but ipvsadm is not installed (apt-get install ipvsadm)"
		return 1
	}
}
peer_check_ipvs_dr() { peer_check_ipvs; }
ipvs_up() {
	local flag=$1 i
	TGT=$VIP
	# IPVS works at LOCAL_IN: the VIP must be a local address.
	nsx "$NS_DIR" ip addr add "$VIP/32" dev lo
	nsx "$NS_DIR" ipvsadm -A -t "$VIP:80" -s rr
	nsx "$NS_DIR" ipvsadm -A -u "$VIP:9" -s rr
	nsx "$NS_DIR" ipvsadm -A -t "$VIP:5201" -s rr
	for ((i = 1; i <= SERVERS; i++)); do
		nsx "$NS_DIR" ipvsadm -a -t "$VIP:80" -r "$(rs_ip "$i"):80" "$flag"
		nsx "$NS_DIR" ipvsadm -a -u "$VIP:9" -r "$(rs_ip "$i"):9" "$flag"
	done
	nsx "$NS_DIR" ipvsadm -a -t "$VIP:5201" -r "$(rs_ip 1):5201" "$flag"
}
ipvs_down() {
	nsx "$NS_DIR" ipvsadm -C
	nsx "$NS_DIR" ip addr del "$VIP/32" dev lo
}
peer_up_ipvs() { ipvs_up -m; }
peer_down_ipvs() { ipvs_down; }
peer_up_ipvs_dr() { ipvs_up -g; }
peer_down_ipvs_dr() { ipvs_down; }

# --- (f) govs: each dataplane and forwarding method ------------------------
# GOVS_BIN is built from ./cmd/govs by run.sh; GOVS_WHY says why not.
govs_check() {
	[[ -n $GOVS_BIN ]] || {
		echo "govs not available: $GOVS_WHY"
		return 1
	}
}
peer_check_govs_proxy() { govs_check; }
peer_check_govs_xdp_nat() { govs_check; }
peer_check_govs_xdp_dr() { govs_check; }
peer_check_govs_xdp_snat() { govs_check; }
peer_check_govs_xdp_tun() {
	govs_check || return 1
	# The kernel here has no ipip module: the real servers decapsulate
	# with govs's XDP program (govs realserver tun), one pin path each.
	:
}

# govs_config KIND writes a keepalived.conf-syntax config for the services.
# UDP flows time out after UDP_TIMEOUT s (default 5), like the kernel
# peers' conntrack entries (nf_conntrack_udp_timeout, testbed.sh). The
# connection table has 2^21 entries, so the 1.1M flows of the flows load
# fit (the default 2^20 would evict in a cycle); GOVS_BENCH_TABLE=N in the
# environment sets another size (to see what the table's size costs). SNAT services take their
# source addresses from the pool the nft-snat peer uses too (SNAT_POOL_*).
govs_config() {
	local kind=$1 i
	{
		printf 'global_defs {\n\trouter_id bench\n\tlvs_timeouts udp %s\n\tgovs_conn_table_size %s\n}\n' "$UDP_TIMEOUT" "${GOVS_BENCH_TABLE:-2097152}"
		[[ $kind == SNAT ]] && printf 'govs_snat_pool bench {\n\taddress %s-%s\n}\n' "$SNAT_POOL_FIRST" "${SNAT_POOL_LAST##*.}"
		for svc in "80 TCP all" "9 UDP all" "5201 TCP one"; do
			# shellcheck disable=SC2086
			set -- $svc
			printf 'virtual_server %s %s {\n\tlb_algo rr\n\tlb_kind %s\n\tprotocol %s\n' "$VIP" "$1" "$kind" "$2"
			[[ $kind == SNAT ]] && printf '\tsnat_pool bench\n'
			for ((i = 1; i <= SERVERS; i++)); do
				[[ $3 == one && $i -gt 1 ]] && break
				printf '\treal_server %s %s {\n\t\tweight 1\n\t}\n' "$(rs_ip "$i")" "$1"
			done
			printf '}\n'
		done
	} >"$WORK/govs.conf"
}

# govs_start DATAPLANE starts govs and waits until the VIP answers. Flags
# beyond -f and --dataplane are passed only when "govs run -h" lists them.
govs_start() {
	local dp=$1 t help args
	args=(run -f "$WORK/govs.conf" --dataplane "$dp")
	help=$("$GOVS_BIN" run -h 2>&1 || true)
	# Its own API socket, so a govs on the host is never touched.
	[[ $help == *-api-socket* ]] && args+=(--api-socket "$WORK/govs.sock")
	[[ $help == *-lame-duck* ]] && args+=(--lame-duck 0s)
	if [[ $dp == xdp && $XDP_MODE != native ]]; then
		[[ $help == *-xdp-mode* ]] || {
			warn "this govs has no --xdp-mode: it attaches natively"
			return 1
		}
		args+=(--xdp-mode "$XDP_MODE")
	fi
	if [[ $dp == xdp && $help == *-interface* ]]; then
		# Both arms in the NAT layout (replies come back through bnd1).
		args+=(--interface bnd0)
		[[ $TB_LAYOUT == nat ]] && args+=(--interface bnd1)
	fi
	ip netns exec "$NS_DIR" "$GOVS_BIN" "${args[@]}" >"$WORK/govs.log" 2>&1 &
	GOVS_PID=$!
	for ((t = 0; t < 100; t++)); do
		if nsx "$NS_CL" curl -s -m 1 -o /dev/null "http://$VIP/"; then
			return 0
		fi
		kill -0 "$GOVS_PID" 2>/dev/null || break
		sleep 0.1
	done
	warn "govs ${args[*]} did not forward to the VIP; log tail:"
	tail -n 5 "$WORK/govs.log" >&2
	govs_stop
	return 1
}
govs_stop() {
	[[ -n ${GOVS_PID:-} ]] || return 0
	kill -INT "$GOVS_PID" 2>/dev/null
	local t
	for ((t = 0; t < 30; t++)); do
		kill -0 "$GOVS_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$GOVS_PID" 2>/dev/null
	wait "$GOVS_PID" 2>/dev/null
	GOVS_PID=""
}
peer_up_govs_proxy() {
	TGT=$VIP
	# The proxy listens on VIP:port like HAProxy, so the VIP is local.
	nsx "$NS_DIR" ip addr add "$VIP/32" dev lo
	govs_config NAT
	govs_start proxy
}
peer_down_govs_proxy() {
	govs_stop
	nsx "$NS_DIR" ip addr del "$VIP/32" dev lo
}
peer_up_govs_xdp_nat() {
	TGT=$VIP
	govs_config NAT
	govs_start xdp
}
peer_down_govs_xdp_nat() { govs_stop; }
peer_up_govs_xdp_dr() {
	TGT=$VIP
	govs_config DR
	govs_start xdp
}
peer_down_govs_xdp_dr() { govs_stop; }
peer_up_govs_xdp_snat() {
	TGT=$VIP
	snat_pool_add || return 1
	govs_config SNAT
	govs_start xdp
}
peer_down_govs_xdp_snat() {
	govs_stop
	snat_pool_del
}
peer_up_govs_xdp_tun() {
	local i
	TGT=$VIP
	for ((i = 1; i <= SERVERS; i++)); do
		if [[ -n ${BENCH_GOVS_TUN_DECAP:-} ]]; then
			nsx "$(rs_ns "$i")" sh -c "$BENCH_GOVS_TUN_DECAP" || return 1
			continue
		fi
		# nsenter keeps the host's mount namespace, where the program's
		# link is pinned (ip netns exec would give it a private /sys).
		mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
		nsenter --net="/run/netns/$(rs_ns "$i")" "$GOVS_BIN" realserver tun --vip "$VIP" --interface bnr0 \
			--pin-path "/sys/fs/bpf/govs-decap-$(rs_ns "$i")" >/dev/null || return 1
	done
	govs_config TUN
	govs_start xdp
}
peer_down_govs_xdp_tun() {
	local i ns
	govs_stop
	# Take the decapsulation program off again so that the next peers
	# see the same real servers (the VIP stays on lo for DR).
	for ((i = 1; i <= SERVERS; i++)); do
		ns=$(rs_ns "$i")
		nsenter --net="/run/netns/$ns" "$GOVS_BIN" realserver undo --method tun --vip "$VIP" --interface bnr0 --pin-path "/sys/fs/bpf/govs-decap-$ns" >/dev/null 2>&1 || true
		nsx "$ns" ip addr replace "$VIP/32" dev lo
	done
}
