#!/bin/sh
# Install the OpenClaw Control UI that clawgate serves on its port (when
# gateway.controlUi.root is unset): the pinned npm package openclaw@2026.9.6
# is fetched with `npm pack`, its tarball checked against the sha512
# integrity the registry publishes for that version (and the one pinned
# here), and only package/dist/control-ui is extracted.
#
#   contrib/install-ui.sh [--dest DIR] [--tarball FILE] [--force]
#
#   --dest DIR      where the UI goes (default: $CLAWGATE_CONTROL_UI_DIR,
#                   else ${XDG_DATA_HOME:-$HOME/.local/share}/clawgate/control-ui,
#                   the place the gateway looks at; see src/api/api-ui.h)
#   --tarball FILE  use this openclaw-2026.9.6.tgz instead of `npm pack`
#                   (checked the same way)
#   --force         reinstall even when the pinned version is there
#
# Needs npm (Debian package `npm`), tar and openssl. Idempotent: quick when
# the pinned version is installed already. Prints the directory.
set -eu

PKG=openclaw
VERSION=2026.9.6
INTEGRITY='sha512-Ie0kyQSCVfFqixsgVg39vevUDq01Ch5u3+7Yu5Y3qARczmdAe+lzp8bVnO9925rHiW/+CFp70zfORCyPmCH31g=='

dest=${CLAWGATE_CONTROL_UI_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/clawgate/control-ui}
tarball=
force=0
while [ $# -gt 0 ]; do
	case $1 in
	--dest) dest=$2; shift 2 ;;
	--tarball) tarball=$2; shift 2 ;;
	--force) force=1; shift ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "install-ui.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
[ -n "$dest" ] || { echo "install-ui.sh: no destination" >&2; exit 2; }

stamp=$dest/.clawgate-ui
if [ "$force" = 0 ] && [ -f "$dest/index.html" ] && [ -f "$stamp" ] &&
   grep -qx "integrity=$INTEGRITY" "$stamp"; then
	echo "$dest"
	exit 0
fi

for tool in tar openssl; do
	command -v $tool >/dev/null 2>&1 ||
		{ echo "install-ui.sh: $tool not found" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/clawgate-ui.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

if [ -z "$tarball" ]; then
	command -v npm >/dev/null 2>&1 ||
		{ echo "install-ui.sh: npm not found (apt-get install npm)" >&2; exit 1; }
	echo "install-ui.sh: fetching $PKG@$VERSION from the npm registry" >&2
	(cd "$work" && npm pack "$PKG@$VERSION" --silent >/dev/null) ||
		{ echo "install-ui.sh: npm pack failed" >&2; exit 1; }
	tarball=$work/$PKG-$VERSION.tgz
fi
[ -f "$tarball" ] || { echo "install-ui.sh: no tarball $tarball" >&2; exit 1; }

# The integrity the registry publishes for the version must be the pinned
# one, and the tarball must match it.
if command -v npm >/dev/null 2>&1 &&
   published=$(npm view "$PKG@$VERSION" dist.integrity 2>/dev/null) &&
   [ -n "$published" ]; then
	if [ "$published" != "$INTEGRITY" ]; then
		echo "install-ui.sh: the registry publishes $published for" \
			"$PKG@$VERSION, not the pinned $INTEGRITY" >&2
		exit 1
	fi
else
	echo "install-ui.sh: registry not reachable; checking against the" \
		"pinned integrity only" >&2
fi
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | openssl base64 -A)"
if [ "$actual" != "$INTEGRITY" ]; then
	echo "install-ui.sh: integrity mismatch: $actual, expected $INTEGRITY" >&2
	exit 1
fi

tar -xzf "$tarball" -C "$work" package/dist/control-ui ||
	{ echo "install-ui.sh: no dist/control-ui in the tarball" >&2; exit 1; }
src=$work/package/dist/control-ui
[ -f "$src/index.html" ] ||
	{ echo "install-ui.sh: dist/control-ui has no index.html" >&2; exit 1; }
printf 'package=%s\nversion=%s\nintegrity=%s\n' "$PKG" "$VERSION" \
	"$INTEGRITY" >"$src/.clawgate-ui"

# Swap in the new copy whole: a running gateway sees the old or the new.
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new" "$dest.old"
cp -R "$src" "$dest.new"
chmod -R u+rwX,go+rX "$dest.new"
if [ -e "$dest" ]; then
	mv "$dest" "$dest.old"
fi
mv "$dest.new" "$dest"
rm -rf "$dest.old"
echo "install-ui.sh: installed the Control UI of $PKG@$VERSION in $dest" \
	"($(du -sh "$dest" | cut -f1))" >&2
echo "$dest"
