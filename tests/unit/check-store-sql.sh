#!/bin/sh
# The store owns every SQL statement (STYLE.md, doc/sqlite.md): no file
# under src/ outside src/store/ may prepare, run or step a statement, or
# open or close a database connection. Code outside the store calls
# store_* functions (src/store/store*.h). TAP output for make check.
here=$(cd "$(dirname "$0")" && pwd)
: "${CLAWGATE_SRCDIR:=$(cd "$here/../.." && pwd)}"
src=$CLAWGATE_SRCDIR/src
pat='sqlite3_(prepare[a-z0-9_]*|exec|step|get_table|open[a-z0-9_]*|close[a-z0-9_]*)[[:space:]]*\('

echo "1..2"
if [ ! -d "$src/store" ]; then
	echo "not ok 1 - no source tree at $src"
	echo "ok 2 # SKIP no source tree"
	exit 0
fi
# the pattern itself must still find calls (a broken pattern passes all)
if printf '\tif (sqlite3_prepare_v2(db, "x", -1, &s, NULL)\n' |
	grep -Eq "$pat"; then
	echo "ok 1 - the SQL call pattern matches a call"
else
	echo "not ok 1 - the SQL call pattern matches nothing"
fi
hits=$(cd "$src" && grep -rnE --include='*.c' --include='*.h' "$pat" . |
	grep -v '^\./store/')
if [ -z "$hits" ]; then
	echo "ok 2 - SQL only in src/store"
else
	echo "not ok 2 - SQL outside src/store (move it behind a store_* function)"
	printf '%s\n' "$hits" | sed 's/^/# /'
fi
