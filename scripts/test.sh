#!/usr/bin/env bash
# test.sh — the project's whole test suite, as CI runs it. Installs what the
# tests need (scripts/setup.sh), checks formatting, vet and generated files,
# then runs every Go test. Tests that need root or network namespaces run
# for real as root and skip with a message otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== builds for 32-bit and arm64 Linux"
# a director on a 32-bit ARM board or an arm64 server: int is 32 bits
# there, and some syscall types differ (vet compiles the tests too)
GOOS=linux GOARCH=386 go vet ./...
GOOS=linux GOARCH=arm GOARM=7 go build ./...
GOOS=linux GOARCH=arm64 go build ./...

if [ -x internal/dataplane/xdp/gen_check.sh ]; then
  echo "== generated eBPF objects are current"
  internal/dataplane/xdp/gen_check.sh
fi

echo "== go test"
# One package at a time keeps the namespace tests of different packages
# from competing for the two cores.
go test -count=1 -p 1 -timeout 20m ./...

echo "== go test -race (pure packages)"
go test -count=1 -race -timeout 10m ./internal/config/... ./internal/sched/... ./internal/connsync/... ./internal/web/... ./internal/configsync/...

echo "== fuzz (bounded: parsers and packet decoders)"
# Minimizing new inputs of a large seed can take the whole budget, so it
# is kept short; a crash is still reported with its input. Budgets are
# counts of executions (about 5-15 s each here), not durations: with a
# duration, Go 1.26's fuzzing coordinator can report a spurious "context
# deadline exceeded" failure when the time runs out while a worker is
# busy (golang/go#75804, fixed in Go 1.27).
fuzz() { go test -run '^$' -fuzz "^$1\$" -fuzztime "$3" -fuzzminimizetime 20x "$2"; }
fuzz FuzzParse ./internal/config/ 200000x
fuzz FuzzParse ./internal/lvscf/ 100000x
fuzz FuzzParseAdvert ./internal/vrrp/ 200000x
fuzz FuzzParseCommand ./internal/notify/ 100000x
fuzz FuzzDecode ./internal/connsync/ 300000x
