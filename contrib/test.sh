#!/usr/bin/env bash
# Build and test clawgate: deps, then two out-of-tree builds (build/normal
# with -Werror, build/asan with ASan+UBSan), `make check` in each, the logs
# of failed tests, and as the very last line `N passed, N failed, N skipped`
# counted from every .trs file automake wrote. Exits non-zero when anything
# failed, including a build (a failed build counts as one failure).
#   CLAWGATE_BUILD_ROOT     where the builds go (default <repo>/build)
#   CLAWGATE_VARIANTS       "normal asan" (default) or a subset
#   CLAWGATE_PEER_TESTS=1   also install node 24 + openclaw (~800 MB) so the
#                           tests that drive the real openclaw CLI run
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_ROOT=${CLAWGATE_BUILD_ROOT:-$ROOT/build}
VARIANTS=${CLAWGATE_VARIANTS:-normal asan}
JOBS=${CLAWGATE_JOBS:-2}
build_failures=0

say() { printf '== %s\n' "$*"; }

if ! bash contrib/deps.sh; then
	echo "deps: installation failed"
	echo "0 passed, 1 failed"
	exit 1
fi

# The official frame schema for the black-box tests (npm), fetched up front
# so no test touches the network.
bash tests/integration/fetch-schema.sh ||
	say "warning: could not fetch protocol.schema.json; schema tests fail"
# A pinned Node 24 for the test-only JavaScript (Debian 12 ships 18).
bash tests/integration/node/install.sh >/dev/null ||
	say "warning: pinned node not installed; using the system node"
# The official OpenAI SDK for Node, a real client of the HTTP API (npm).
bash tests/integration/sdk/install.sh >/dev/null ||
	say "warning: could not install the openai SDK; SDK tests skip"
# A real inference engine (node-llama-cpp, CPU) for the smoke test (npm).
bash tests/integration/engine/install.sh >/dev/null ||
	say "warning: could not install the real engine; its tests skip"
# The real Control UI (npm openclaw@2026.9.6, its dist/control-ui only) and
# playwright-core (npm) driving Debian chromium, for the browser tests.
bash contrib/install-ui.sh --dest \
	"${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-ui/control-ui" >/dev/null ||
	say "warning: could not install the Control UI; browser tests skip"
bash tests/integration/browser/install.sh >/dev/null ||
	say "warning: could not install playwright-core; browser tests skip"

if [ "${CLAWGATE_PEER_TESTS:-0}" = 1 ]; then
	shared=${CLAWGATE_SHARED:-$ROOT/../shared}
	if [ -x "$shared/peer/start-peer.sh" ]; then
		# start-peer.sh installs node 24 + openclaw when missing; starting
		# and stopping it once is the supported way to run its install.
		peer_state=$(mktemp -d)
		if pid=$(bash "$shared/peer/start-peer.sh" --port 18799 \
			--token peer-install --state-dir "$peer_state"); then
			kill -TERM "$pid" 2>/dev/null || true
		else
			say "warning: peer install failed; peer CLI tests will skip"
		fi
	else
		say "warning: $shared/peer not found; peer CLI tests will skip"
	fi
fi

if [ ! -x configure ] || [ configure.ac -nt configure ] ||
	[ Makefile.am -nt Makefile.in ]; then
	say "autoreconf"
	if ! autoreconf -fi; then
		echo "autoreconf failed"
		echo "0 passed, 1 failed"
		exit 1
	fi
fi

for v in $VARIANTS; do
	case $v in
	normal) flags=(--enable-werror) ;;
	asan) flags=(--enable-werror --enable-sanitizers) ;;
	*) say "unknown variant $v"; build_failures=$((build_failures + 1)); continue ;;
	esac
	dir=$BUILD_ROOT/$v
	mkdir -p "$dir"
	# Results of earlier runs must not be counted again.
	find "$dir" \( -name '*.trs' -o -name 'test-suite.log' \) -delete \
		2>/dev/null
	say "$v: configure ${flags[*]}"
	if [ ! -f "$dir/Makefile" ] || [ "$ROOT/configure" -nt "$dir/config.status" ]; then
		if ! (cd "$dir" && "$ROOT/configure" "${flags[@]}" >configure.out 2>&1); then
			tail -n 40 "$dir/configure.out"
			say "$v: configure FAILED"
			build_failures=$((build_failures + 1))
			continue
		fi
	fi
	say "$v: make"
	if ! make -C "$dir" -j"$JOBS" >"$dir/make.out" 2>&1; then
		grep -E 'error|Error' "$dir/make.out" | head -n 60
		tail -n 20 "$dir/make.out"
		say "$v: build FAILED"
		build_failures=$((build_failures + 1))
		continue
	fi
	say "$v: make check"
	make -C "$dir" -k -j"$JOBS" check >"$dir/check.out" 2>&1
	grep -E '^(PASS|FAIL|XPASS|ERROR|SKIP|XFAIL):|^# ' "$dir/check.out" |
		grep -vE '^PASS:' | head -n 200
done

# Logs of failed tests (bounded).
failed_logs=$(grep -lE '^:test-result: (FAIL|XPASS|ERROR)' \
	$(find "$BUILD_ROOT" -name '*.trs' 2>/dev/null) /dev/null 2>/dev/null)
for trs in $failed_logs; do
	log=${trs%.trs}.log
	say "failed: ${log#"$BUILD_ROOT"/}"
	[ -f "$log" ] || continue
	if grep -q '^=* \(FAILURES\|ERRORS\) =*$' "$log"; then
		# pytest (the black-box suite): the failure reports only.
		sed -n '/^=* \(ERRORS\|FAILURES\) =*$/,/short test summary/p' \
			"$log" | head -n 400 | cut -c1-400
	else
		grep -E '^(not ok|Bail out!)' "$log" | head -n 50
		tail -n 100 "$log" | cut -c1-400
	fi
done

pass=0 fail=0 skip=0
while IFS= read -r line; do
	case $line in
	':test-result: PASS'* | ':test-result: XFAIL'*) pass=$((pass + 1)) ;;
	':test-result: FAIL'* | ':test-result: XPASS'* | ':test-result: ERROR'*)
		fail=$((fail + 1)) ;;
	':test-result: SKIP'*) skip=$((skip + 1)) ;;
	esac
done < <(find "$BUILD_ROOT" -name '*.trs' -exec cat {} + 2>/dev/null)
fail=$((fail + build_failures))
[ "$build_failures" -gt 0 ] && say "$build_failures build(s) failed"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
