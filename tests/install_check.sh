#!/usr/bin/env bash
# `cmake --install` puts the library, its header, a pkg-config file, the CLI and the man pages in
# place, and a program built only from the installed header and pkg-config file links and runs.
set -euo pipefail
build=$1
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
pass=0
fail=0
check() {
    if [ -e "$prefix/$1" ]; then pass=$((pass + 1)); else echo "FAIL - missing $1"; fail=$((fail + 1)); fi
}
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(cd "$prefix" && ls -d lib/*-linux-gnu 2>/dev/null || echo lib)
check bin/tokencert
check include/tokencert.h
check "$libdir/libtokencert.so"
check "$libdir/pkgconfig/tokencert.pc"
for page in tokencert tokencert-tokens tokencert-list tokencert-check; do
    check "share/man/man1/$page.1"
done
cat >"$prefix/probe.c" <<'C'
#include <stdio.h>
#include <tokencert.h>
int main(void) { printf("%s|%s\n", tokencert_version(), tokencert_strerror(TC_ERR_TOKEN_ABSENT)); return 0; }
C
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
# shellcheck disable=SC2046,SC2086
if ${CC:-cc} ${PROBE_FLAGS:-} -o "$prefix/probe" "$prefix/probe.c" $(pkg-config --define-variable=prefix="$prefix" --cflags --libs tokencert) &&
    out=$(LD_LIBRARY_PATH=$prefix/$libdir "$prefix/probe") && [ "$out" = "$(pkg-config --modversion tokencert)|token not present" ]; then
    pass=$((pass + 1))
else
    echo "FAIL - a program built against the installed header and pkg-config file"
    fail=$((fail + 1))
fi
# Only the public API is exported.
if nm -D --defined-only "$prefix/$libdir/libtokencert.so" | awk '{print $3}' | grep -v '^tokencert_' | grep -q .; then
    echo "FAIL - libtokencert exports symbols outside the tokencert_ namespace:"
    nm -D --defined-only "$prefix/$libdir/libtokencert.so" | awk '{print $3}' | grep -v '^tokencert_' | head
    fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
if man -l "$prefix/share/man/man1/tokencert-list.1" 2>/dev/null | grep -q -- '--timeline'; then
    pass=$((pass + 1))
else
    echo "FAIL - the list man page does not render or lacks --timeline"
    fail=$((fail + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
