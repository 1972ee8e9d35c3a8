#!/usr/bin/env bash
# Quick start on a fresh Debian 12 machine: install the dependencies, build
# clawgate out of tree (build/normal) and run the gateway in the foreground
# on loopback. State lives in ~/.openclaw unless OPENCLAW_STATE_DIR is set;
# the daemon prints its URL and, when it generated one, its token.
# The pinned Control UI is installed (contrib/install-ui.sh, into
# ~/.local/share/clawgate/control-ui), so the gateway's own URL opens the
# dashboard: the daemon's last start-up line is
# "Dashboard: http://127.0.0.1:PORT/#token=...". Extra arguments go to
# `clawgate gateway run` (e.g. --port 18790).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${CLAWGATE_BUILD_DIR:-$ROOT/build/normal}

bash contrib/deps.sh
if [ ! -x configure ] || [ configure.ac -nt configure ] ||
	[ Makefile.am -nt Makefile.in ]; then
	autoreconf -fi
fi
mkdir -p "$BUILD"
cd "$BUILD"
if [ ! -f Makefile ] || [ "$ROOT/configure" -nt config.status ]; then
	"$ROOT/configure"
fi
make -j"$(nproc 2>/dev/null || echo 2)"
if ! bash "$ROOT/contrib/install-ui.sh" >/dev/null; then
	echo "quickstart: the Control UI could not be installed; the gateway" \
		"runs without it (retry with: make install-ui)" >&2
fi
exec ./clawgate gateway run --allow-unconfigured "$@"
