#!/bin/sh
# Replay one fuzz target over its corpus, then run a bounded, seeded
# mutation pass; TAP on stdout. make check runs it as the LOG_COMPILER of
# tests/fuzz/<name>.fuzz (from the top build directory).
#
#   usage: run-fuzz.sh NAME | path/to/NAME.fuzz
#
# NAME.fuzz holds defaults as shell assignments (iterations=, seed=,
# max_len=); FUZZ_ITERATIONS, FUZZ_SEED, FUZZ_MAX_LEN, FUZZ_DICT and
# FUZZ_CRASH_DIR from the environment win. The binary is
# $top_builddir/tests/fuzz/fuzz-NAME (top_builddir defaults to ".").
set -e
if [ $# -ne 1 ]; then
	echo "usage: $0 NAME | path/to/NAME.fuzz" >&2
	exit 99
fi
name=$(basename "$1" .fuzz)
fuzzdir=$(cd "$(dirname "$0")" && pwd)
bin=${top_builddir:-.}/tests/fuzz/fuzz-$name
corpus=$fuzzdir/corpus/$name

if [ ! -x "$bin" ]; then
	echo "Bail out! $bin is not built (make $bin)"
	exit 99
fi
if [ ! -d "$corpus" ]; then
	echo "Bail out! no corpus directory $corpus"
	exit 99
fi
iterations=2000
seed=1
max_len=4096
if [ -f "$fuzzdir/$name.fuzz" ]; then
	. "$fuzzdir/$name.fuzz"
fi
FUZZ_ITERATIONS=${FUZZ_ITERATIONS:-$iterations}
FUZZ_SEED=${FUZZ_SEED:-$seed}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-$max_len}
if [ -z "$FUZZ_DICT" ] && [ -f "$fuzzdir/$name.dict" ]; then
	FUZZ_DICT=$fuzzdir/$name.dict
fi
export FUZZ_ITERATIONS FUZZ_SEED FUZZ_MAX_LEN FUZZ_DICT
exec "$bin" "$corpus"
