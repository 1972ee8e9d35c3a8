#!/bin/sh
# Fetch protocol.schema.json of @openclaw/gateway-protocol (npm) into the
# cache used by the black-box tests (gwschema.py), unless already there.
#   CLAWGATE_SCHEMA_CACHE   cache dir (default ${XDG_CACHE_HOME:-~/.cache}/clawgate)
set -eu
version=2026.9.1
cache=${CLAWGATE_SCHEMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clawgate}
dest=$cache/gateway-protocol-$version/protocol.schema.json
if [ -s "$dest" ]; then
	echo "fetch-schema: $dest present"
	exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "fetch-schema: npm not found" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@openclaw/gateway-protocol@$version" >/dev/null)
tar -xzf "$tmp"/openclaw-gateway-protocol-*.tgz -C "$tmp" package/protocol.schema.json
mkdir -p "$(dirname "$dest")"
mv "$tmp/package/protocol.schema.json" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "fetch-schema: fetched $dest"
