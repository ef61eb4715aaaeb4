# shellcheck shell=bash
# profile.sh: what bench/profile-*.sh share: a one-peer bench/run.sh in
# the background, waits for a moment of it, and its end. Sourced; the
# caller sets NAME (for messages) and has `set -euo pipefail`.

# profile_start ARGS...: checks for perf, then runs `bench/run.sh ARGS...`
# in the background with its output in $PROFILE_LOG (and the report
# beside it), the run's pid in $PROFILE_RUN; all removed at exit.
profile_start() {
	command -v perf >/dev/null || {
		echo "$NAME: perf is not installed (scripts/setup.sh installs linux-perf)" >&2
		exit 1
	}
	PROFILE_LOG=$(mktemp)
	trap 'rm -f "$PROFILE_LOG" "$PROFILE_LOG.md" "$PROFILE_LOG.tsv"' EXIT
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
