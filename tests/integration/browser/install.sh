#!/bin/sh
# Install playwright-core (npm, pinned in package.json) into a cache
# directory for the Control UI browser tests (tests/integration/
# test_ui_browser.py). The browser is Debian's chromium; playwright-core
# downloads none. Idempotent; quick when already installed.
#   CLAWGATE_BROWSER_DIR  target (default ${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-browser)
# Prints the directory; exit 0 also when npm is missing (the tests skip).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${CLAWGATE_BROWSER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate-browser}
if ! command -v npm >/dev/null 2>&1; then
	echo "browser/install.sh: npm not found; browser tests will skip" >&2
	exit 0
fi
mkdir -p "$dir"
if ! cmp -s "$here/package.json" "$dir/package.json" ||
   [ ! -d "$dir/node_modules/playwright-core" ]; then
	cp "$here/package.json" "$dir/package.json"
	(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install \
		--no-audit --no-fund --omit=optional --loglevel=error >&2) ||
		echo "browser/install.sh: npm install failed; browser tests" \
			"will skip" >&2
fi
echo "$dir"
