#!/usr/bin/env bash
# The whole test suite, from a fresh Debian bookworm machine: installs what it needs, then builds
# and runs every test twice — a gcc build with -Werror and strict preconditions, and a clang build
# with ASan + UBSan (no recovery) — and checks formatting. Any failure fails the run; a missing
# dependency is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/setup.sh

echo "== format check (clang-format)"
mapfile -t sources < <(git ls-files '*.c' '*.h' 2>/dev/null || find src common tools tests -name '*.[ch]')
clang-format --dry-run -Werror "${sources[@]}"
echo "== layer check (scripts/check-layers.sh)"
bash scripts/check-layers.sh

run_suite() {
    local dir=$1
    shift
    echo "== configure $dir: $*"
    cmake -S "$top" -B "$dir" -DTOKENCERT_WERROR=ON -DTOKENCERT_STRICT=ON "$@" >"$dir.configure.log" 2>&1 ||
        { cat "$dir.configure.log"; return 1; }
    echo "== build $dir"
    cmake --build "$dir" -j"$jobs"
    echo "== test $dir"
    ctest --test-dir "$dir" --output-on-failure -j2
}

mkdir -p build
run_suite build/gcc -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo
# fast_unwind_on_malloc=0: libcrypto has no frame pointers, so the fast unwinder stops there and a
# leak inside a PKCS#11 module reached through OpenSSL (tpm2-pkcs11's C_SignInit parses the key with
# d2i and leaks it) would not show the module's frame that tests/lsan.supp matches.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tests/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0} \
    run_suite build/asan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DTOKENCERT_SANITIZE=ON
# The README's first command, as a user runs it from this checkout: the whole story must end with
# the old generation pruned and the new one the only certificate the check judges.
echo "== demo (scripts/demo.sh, the README's first command)"
bash scripts/demo.sh >build/demo.log 2>&1 || { cat build/demo.log; echo "demo.sh failed"; exit 1; }
for want in "is pending" "generation 2 active" "pruned           ok       generation 1" \
    "tokencert OK - 1 credential"; do
    grep -q -- "$want" build/demo.log || { cat build/demo.log; echo "demo.sh: no '$want'"; exit 1; }
done
echo "demo: the whole story ran ($(grep -c '^\$ ' build/demo.log) commands)"
echo "== all suites passed"
