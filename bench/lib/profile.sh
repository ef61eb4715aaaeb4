# shellcheck shell=bash
# profile.sh: what bench/profile-*.sh share: a one-peer bench/run.sh in
# the background, waits for a moment of it, and its end. Sourced; the
# caller sets NAME (for messages) and has `set -euo pipefail`.

# profile_start ARGS...: checks for perf, builds bench/cmd/jitlines, then
# runs `bench/run.sh ARGS...` in the background with its output in
# $PROFILE_LOG (and the report beside it), the run's pid in $PROFILE_RUN;
# all removed at exit.
profile_start() {
	command -v perf >/dev/null || {
		echo "$NAME: perf is not installed (scripts/setup.sh installs linux-perf)" >&2
		exit 1
	}
	PROFILE_LOG=$(mktemp)
	PROFILE_JITLINES=$PROFILE_LOG.jitlines
	trap 'rm -f "$PROFILE_LOG" "$PROFILE_LOG.md" "$PROFILE_LOG.tsv" "$PROFILE_JITLINES"' EXIT
	go build -o "$PROFILE_JITLINES" ./bench/cmd/jitlines
	bench/run.sh "$@" --out "$PROFILE_LOG.md" >"$PROFILE_LOG" 2>&1 &
	PROFILE_RUN=$!
	PROFILE_DEADLINE=$((SECONDS + 300))
}

# profile_wait WHAT CMD...: polls CMD (its output dropped) until it
# succeeds; fails with "NAME: WHAT" (and the run's output) when the run
# ends first or 300 s after profile_start.
profile_wait() {
	local what=$1
	shift
	until "$@" >/dev/null; do
		((SECONDS < PROFILE_DEADLINE)) && kill -0 "$PROFILE_RUN" 2>/dev/null || {
			echo "$NAME: $what:" >&2
			cat "$PROFILE_LOG" >&2
			exit 1
		}
		sleep 0.1
	done
}

# profile_end waits for the run, and fails with its output if it failed.
profile_end() {
	wait "$PROFILE_RUN" || {
		echo "$NAME: bench/run.sh failed:" >&2
		cat "$PROFILE_LOG" >&2
		exit 1
	}
}

# profile_lines_dump NAME: saves the line table of the loaded BPF
# program NAME in $PROFILE_LINES, with bench/cmd/jitlines (built by
# profile_start), which maps samples to C source lines with it.
profile_lines_dump() {
	"$PROFILE_JITLINES" dump "$1" >"$PROFILE_LINES"
}

# profile_lines DATA ARGS...: the program's source lines with the most
# samples in perf data DATA (jitlines hot ARGS...).
profile_lines() {
	local data=$1
	shift
	perf script -i "$data" -F ip,sym 2>/dev/null | "$PROFILE_JITLINES" hot "$PROFILE_LINES" "$@"
}
