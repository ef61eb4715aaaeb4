#!/bin/sh
# Regenerates the BPF objects and Go bindings of the XDP dataplane from
# bpf/*.c and fails when they differ from the committed ones.
# Needs: clang (14), llvm-strip, libbpf-dev, linux-libc-dev (Debian).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -p ./*_bpfel.go ./*_bpfel.o "$tmp"/
go generate .
fail=0
for f in ./*_bpfel.go ./*_bpfel.o; do
	if ! cmp -s "$f" "$tmp/$(basename "$f")"; then
		echo "gen_check: $f is out of date with bpf/*.c: run 'go generate ./internal/dataplane/xdp' and commit" >&2
		fail=1
	fi
done
for f in "$tmp"/*_bpfel.go "$tmp"/*_bpfel.o; do
	[ -e "./$(basename "$f")" ] || { echo "gen_check: $(basename "$f") no longer generated" >&2; fail=1; }
done
exit $fail
