#!/bin/sh
# make fuzz: run each libFuzzer target for SECONDS on a scratch copy of its
# corpus (the checked-in corpus is never written), then print one summary
# line per target: name, execs, crashes (artifacts).
#   usage: run-libfuzzer.sh BINDIR SECONDS NAME...
set -u
bindir=$1
secs=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
work=${FUZZ_WORKDIR:-$bindir/fuzz-work}
mkdir -p "$work"
status=0
for name in "$@"; do
	bin=$bindir/libfuzzer-$name
	[ -x "$bin" ] || { echo "$name: $bin not built"; status=1; continue; }
	mkdir -p "$work/$name/corpus" "$work/$name/artifacts"
	dict=
	[ -f "$here/$name.dict" ] && dict=-dict=$here/$name.dict
	# shellcheck disable=SC2086
	"$bin" $dict -max_len="${FUZZ_MAX_LEN:-4096}" -max_total_time="$secs" \
		-print_final_stats=1 -artifact_prefix="$work/$name/artifacts/" \
		"$work/$name/corpus" "$here/corpus/$name" \
		>"$work/$name/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
		"$work/$name/log" | tail -1)
	crashes=$(find "$work/$name/artifacts" -type f | wc -l)
	echo "FUZZ $name execs=${execs:-?} crashes=$crashes rc=$rc"
	[ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] || status=1
done
exit $status
