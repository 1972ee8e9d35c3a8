#!/bin/sh
# make fuzz: run each libFuzzer target, one at a time, on a scratch copy of
# its corpus (the checked-in corpus is never written), then print a table:
# target, execs, seconds, execs per second, crashes (artifacts), status.
#   usage: run-libfuzzer.sh BINDIR SECONDS NAME...
# A target stops after SECONDS, or earlier once it has run FUZZ_RUNS inputs
# (libFuzzer -runs) when that is set. Environment: FUZZ_RUNS, FUZZ_MAX_LEN
# (default: max_len= of NAME.fuzz, else 4096), FUZZ_TIMEOUT (seconds for
# one input, default 25), FUZZ_WORKDIR (default BINDIR/fuzz-work),
# FUZZ_NICE (niceness of the runs, default 0), ASAN_OPTIONS.
set -u
bindir=$1
secs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=${FUZZ_WORKDIR:-$bindir/fuzz-work}
runs=${FUZZ_RUNS:-}
mkdir -p "$work"
# Allocation stacks cost a quarter of the time of the allocation-heavy
# targets and only serve reports: a crash is replayed with full ones
# (ASAN_OPTIONS from the environment wins).
ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0}
export ASAN_OPTIONS
status=0
table=$work/table.txt
printf '%-14s %12s %8s %10s %8s  %s\n' target execs seconds execs/s \
	crashes status >"$table"
for name in "$@"; do
	bin=$bindir/libfuzzer-$name
	if [ ! -x "$bin" ]; then
		echo "$name: $bin not built"
		status=1
		continue
	fi
	rm -rf "$work/$name/artifacts"
	mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
	dict=
	[ -f "$here/$name.dict" ] && dict=-dict=$here/$name.dict
	max_len=$(sed -n 's/^max_len=\([0-9][0-9]*\)$/\1/p' \
		"$here/$name.fuzz" 2>/dev/null | tail -1)
	max_len=${FUZZ_MAX_LEN:-${max_len:-4096}}
	runs_arg=
	[ -n "$runs" ] && runs_arg=-runs=$runs
	start=$(date +%s)
	# shellcheck disable=SC2086
	nice -n "${FUZZ_NICE:-0}" "$bin" $dict $runs_arg \
		-max_len="$max_len" -max_total_time="$secs" \
		-timeout="${FUZZ_TIMEOUT:-25}" -print_final_stats=1 \
		-artifact_prefix="$work/$name/artifacts/" \
		"$work/$name/corpus" "$here/corpus/$name" \
		>"$work/$name/log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
		"$work/$name/log" | tail -1)
	crashes=$(find "$work/$name/artifacts" -type f | wc -l)
	verdict=ok
	[ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] || verdict="FAIL rc=$rc"
	if [ -n "$runs" ] && [ "${execs:-0}" -lt "$runs" ]; then
		[ "$verdict" = ok ] && verdict="short of $runs"
	fi
	[ "$verdict" = ok ] || [ "${verdict#short}" != "$verdict" ] ||
		status=1
	rate=$(( ${execs:-0} / (took > 0 ? took : 1) ))
	echo "FUZZ $name execs=${execs:-?} seconds=$took crashes=$crashes rc=$rc"
	printf '%-14s %12s %8s %10s %8s  %s\n' "$name" "${execs:-?}" \
		"$took" "$rate" "$crashes" "$verdict" >>"$table"
done
echo
cat "$table"
exit $status
