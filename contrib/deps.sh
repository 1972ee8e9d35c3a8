#!/usr/bin/env bash
# Install the Debian 12 packages needed to build and test clawgate, only the
# ones that are missing (apt is skipped entirely when everything is present).
# Works as root, or through sudo when it exists.
set -euo pipefail

PKGS=(
	build-essential autoconf automake libtool pkg-config
	libmicrohttpd-dev libwebsockets-dev libsqlite3-dev sqlite3
	libjansson-dev libssl-dev nettle-dev libcurl4-openssl-dev check
	python3 python3-pytest python3-pytest-timeout python3-websockets
	python3-requests python3-nacl python3-jsonschema
	nodejs npm wrk ca-certificates
	zlib1g-dev chromium
	systemd
	nginx-light	# the mock upstream of tests/bench/openai-overhead.sh
	openssl		# CLI: test_upstream_https.py's throwaway CA
	ngircd
	libev-dev libwebsockets-evlib-ev	# the WS loop on epoll (src/net/ws.c)
	libnghttp2-dev	# the HTTP/2 client of https upstreams (src/agent/h2.c)
)

# A package counts as present when dpkg has it installed; nodejs/npm also
# when their commands exist (NodeSource's nodejs bundles npm and conflicts
# with Debian's npm package).
present() {
	local st
	st=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)
	[ "$st" = installed ] && return 0
	case $1 in
	nodejs) command -v node >/dev/null 2>&1 ;;
	npm) command -v npm >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}

missing=()
for p in "${PKGS[@]}"; do
	present "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages present"
	exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "deps: missing ${missing[*]}; run as root (no sudo found)" >&2
		exit 1
	fi
fi
echo "deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	--no-install-recommends "${missing[@]}"
