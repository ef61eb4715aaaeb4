#!/usr/bin/env bash
# quickstart.sh — the README's first command. Builds govs, starts three demo
# backends on loopback, runs govs with examples/quickstart.conf on the
# userspace proxy dataplane (no root needed), sends traffic through the
# virtual service, prints `govs list`, serves the web UI on 127.0.0.1:3636
# (GOVS_WEB_LISTEN to change it) with a password made up for the run, and
# keeps running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p bin
echo "== building govs"
go build -o bin/govs ./cmd/govs

work=$(mktemp -d)
export GOVS_SOCKET="$work/govs.sock"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting demo backends a (9001), b (9002), c (9003)"
i=0
for name in a b c; do
  i=$((i + 1))
  bin/govs demo backend "127.0.0.1:900$i" "$name" &
  pids+=($!)
done

# the web UI edits the configuration file: a copy of the example, with a
# password made up for this run
conf="$work/govs.conf"
cp examples/quickstart.conf "$conf"
web="${GOVS_WEB_LISTEN:-127.0.0.1:3636}"
webpw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
echo "== govs web-password -f $conf --listen $web"
printf '%s\n' "$webpw" | bin/govs web-password -f "$conf" --listen "$web" >/dev/null

echo "== starting govs run -f $conf (a copy of examples/quickstart.conf; log: $work/govs.log)"
bin/govs run -f "$conf" --api-socket "$GOVS_SOCKET" >"$work/govs.log" 2>&1 &
govs_pid=$!
pids+=($govs_pid)

for _ in $(seq 1 50); do
  [ -S "$GOVS_SOCKET" ] && break
  if ! kill -0 "$govs_pid" 2>/dev/null; then cat "$work/govs.log"; exit 1; fi
  sleep 0.1
done
sleep 0.5

echo "== sending 120 requests to the virtual service 127.0.0.1:8080"
bin/govs demo client http://127.0.0.1:8080/ 120

echo
echo "== govs list -n   (ipvsadm -Ln format)"
bin/govs list -n
echo
echo "== govs list -n --stats"
bin/govs list -n --stats
echo
echo "govs is running (log: $work/govs.log); try in another shell:"
echo "  GOVS_SOCKET=$GOVS_SOCKET bin/govs list -n --rate"
echo "  GOVS_SOCKET=$GOVS_SOCKET bin/govs set -t 127.0.0.1:8080 -r 127.0.0.1:9001 --drain"
echo "web UI: http://$web/  password: $webpw"
echo "Ctrl-C stops everything."
tail -f "$work/govs.log" &
pids+=($!)
wait "$govs_pid"
