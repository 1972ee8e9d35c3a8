#!/bin/sh
# TAP bridge for automake: runs the pytest suite with tap_plugin, which prints
# one TAP line per test on the original stdout; pytest's own output goes to
# stderr (the test's .log). Honours CLAWGATE_BIN and CLAWGATE_SRCDIR (set by
# the Makefile), CLAWGATE_PYTHON (default /usr/bin/python3) and
# CLAWGATE_PYTEST_ARGS (extra pytest arguments, e.g. "-k handshake").
here=$(cd "$(dirname "$0")" && pwd)
: "${CLAWGATE_SRCDIR:=$(cd "$here/../.." && pwd)}"
export CLAWGATE_SRCDIR
py=${CLAWGATE_PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=python3
suite=$CLAWGATE_SRCDIR/tests/integration

done_marker=$(mktemp "${TMPDIR:-/tmp}/clawgate-tap.XXXXXX") || exit 99
rm -f "$done_marker"
trap 'rm -f "$done_marker"' EXIT

# Per-test timeout when python3-pytest-timeout is installed; the helpers also
# bound every socket operation and wait on their own.
timeout_args=
if "$py" -c 'import pytest_timeout' 2>/dev/null; then
	timeout_args="--timeout=${CLAWGATE_TEST_TIMEOUT:-120}"
fi

PYTHONPATH=$suite${PYTHONPATH:+:$PYTHONPATH}
PYTHONDONTWRITEBYTECODE=1
CLAWGATE_TAP_FD=3
CLAWGATE_TAP_DONE=$done_marker
export PYTHONPATH PYTHONDONTWRITEBYTECODE CLAWGATE_TAP_FD CLAWGATE_TAP_DONE

# Whole-suite bound (a hung suite must not hang make check or CI).
limit=${CLAWGATE_SUITE_TIMEOUT:-900}
# shellcheck disable=SC2086
timeout -k 10 "$limit" "$py" -m pytest -p tap_plugin -c "$suite/pytest.ini" \
	--rootdir "$suite" -v $timeout_args ${CLAWGATE_PYTEST_ARGS:-} "$suite" \
	3>&1 1>&2
rc=$?
if [ ! -e "$done_marker" ]; then
	# pytest never reached the end of its session: report that as an error.
	echo "Bail out! pytest did not complete (exit $rc; see the log)"
fi
# Failures are reported through TAP; a non-zero exit would add an ERROR.
exit 0
