#!/usr/bin/env bash
# setup.sh — install everything govs needs to build, test and benchmark on a
# fresh Debian machine. Idempotent; safe to run again. Needs root for apt.
set -euo pipefail

PKGS=(
  # build: eBPF programs (bpf2go), tests
  clang llvm libbpf-dev make git ca-certificates
  # network testbed tools
  iproute2 ethtool nftables iputils-ping tcpdump procps psmisc kmod
  # real peers used by tests and benchmarks
  nginx-light keepalived haproxy dnsmasq vsftpd lftp curl openssl
  # BGP router for the active-active (ECMP) tests
  bird2 frr
  # SNMP master agent and client for the AgentX tests (keepalived's MIBs)
  snmpd snmp snmptrapd
  iperf3 wrk netsniff-ng socat python3 busybox jq
  # benchmark harness: the forwarding logic's share of the director's CPU
  linux-perf
  # browser tests for the web UI
  chromium chromium-driver
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root to install them)" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The test suites start their own nginx/haproxy/dnsmasq/vsftpd/keepalived;
    # the distribution's service instances must not hold their ports.
    for s in nginx haproxy dnsmasq vsftpd keepalived bird frr snmpd snmptrapd; do
      if command -v systemctl >/dev/null 2>&1; then systemctl disable --now "$s" >/dev/null 2>&1 || true; fi
      if command -v service >/dev/null 2>&1; then service "$s" stop >/dev/null 2>&1 || true; fi
    done
  fi
fi

# Go modules.
cd "$(dirname "$0")/.."
go mod download
