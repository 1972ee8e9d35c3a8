#!/bin/sh
# TAP bridge for automake (like tests/integration/run.sh): runs the
# reliability harness with short sizes inside make check. `make
# reliability` runs it with CLAWGATE_RELIABILITY=full instead (see
# README.md). Honours CLAWGATE_BIN, CLAWGATE_SRCDIR, CLAWGATE_PYTHON and
# CLAWGATE_PYTEST_ARGS.
here=$(cd "$(dirname "$0")" && pwd)
: "${CLAWGATE_SRCDIR:=$(cd "$here/../.." && pwd)}"
export CLAWGATE_SRCDIR
py=${CLAWGATE_PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=python3
suite=$CLAWGATE_SRCDIR/tests/reliability
integ=$CLAWGATE_SRCDIR/tests/integration

done_marker=$(mktemp "${TMPDIR:-/tmp}/clawgate-tap.XXXXXX") || exit 99
rm -f "$done_marker"
trap 'rm -f "$done_marker"' EXIT

# Floods need more descriptors than the usual 1024 (bounded by the hard
# limit; the tests scale down when it is lower).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

tap="-p tap_plugin"
[ -n "$CLAWGATE_RELIABILITY_NO_TAP" ] && tap=
PYTHONPATH=$suite:$integ${PYTHONPATH:+:$PYTHONPATH}
PYTHONDONTWRITEBYTECODE=1
CLAWGATE_TAP_FD=3
CLAWGATE_TAP_DONE=$done_marker
export PYTHONPATH PYTHONDONTWRITEBYTECODE CLAWGATE_TAP_FD CLAWGATE_TAP_DONE

limit=${CLAWGATE_SUITE_TIMEOUT:-900}
if [ -n "$tap" ]; then
	# shellcheck disable=SC2086
	timeout -k 10 "$limit" "$py" -m pytest $tap -c "$suite/pytest.ini" \
		--rootdir "$suite" -v ${CLAWGATE_PYTEST_ARGS:-} "$suite" 3>&1 1>&2
	rc=$?
	if [ ! -e "$done_marker" ]; then
		echo "Bail out! pytest did not complete (exit $rc; see the log)"
	fi
	exit 0
fi
# shellcheck disable=SC2086
exec timeout -k 10 "$limit" "$py" -m pytest -c "$suite/pytest.ini" \
	--rootdir "$suite" -v -s ${CLAWGATE_PYTEST_ARGS:-} "$suite"
