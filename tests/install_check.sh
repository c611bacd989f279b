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
# The unit and completion directories must lie under the prefix (relative), or this install would
# write into the running system's directories.
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
unitdir=$(cache_value TOKENCERT_SYSTEMD_UNITDIR)
osslmodulesdir=$(cache_value TOKENCERT_OSSL_MODULES_DIR)
userunitdir=$(cache_value TOKENCERT_SYSTEMD_USERUNITDIR)
completiondir=$(cache_value TOKENCERT_BASH_COMPLETION_DIR)
for d in "$unitdir" "$userunitdir" "$completiondir" "$osslmodulesdir"; do
    case $d in
    "" | /*)
        echo "FAIL - install directory '$d' (systemd units, bash completion, OpenSSL modules) is not relative to the prefix; not installing"
        exit 1
        ;;
    esac
done
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(cd "$prefix" && ls -d lib/*-linux-gnu 2>/dev/null || echo lib)
check bin/tokencert
# The embedded CA's signer, which the library runs by its compiled-in libexec path.
libexecdir=$(cache_value CMAKE_INSTALL_LIBEXECDIR)
signer=${libexecdir:-libexec}/tokencert/tokencert-ca-sign
if [ -f "$prefix/$signer" ] && [ -x "$prefix/$signer" ]; then
    pass=$((pass + 1))
else
    echo "FAIL - $signer is not installed or not executable"
    fail=$((fail + 1))
fi
check include/tokencert.h
check "$libdir/libtokencert.so"
check "$libdir/pkgconfig/tokencert.pc"
# The filter module and its p11-kit registration (disabled), under the prefix.
check "$libdir/pkcs11/tokencert-pkcs11.so"
check share/p11-kit/modules/tokencert-pkcs11.module
# The OpenSSL provider, under the prefix's OpenSSL modules directory, loadable by openssl itself.
check "$osslmodulesdir/tokencert.so"
if out=$(OPENSSL_MODULES="$prefix/$osslmodulesdir" openssl list -providers -provider tokencert 2>&1) &&
    grep -q 'status: active' <<<"$out"; then
    pass=$((pass + 1))
else
    echo "FAIL - the installed tokencert.so does not load into openssl: $out"
    fail=$((fail + 1))
fi
for page in tokencert tokencert-tokens tokencert-list tokencert-check; do
    check "share/man/man1/$page.1"
done
# Clean: no LD_LIBRARY_PATH or anything else from the caller, but the sanitizer build's options
# (its leak suppressions) when there are any.
clean() {
    local v keep=()
    for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do
        if [ -n "${!v:-}" ]; then keep+=("$v=${!v}"); fi
    done
    env -i PATH=/usr/bin:/bin HOME="$prefix/home" "${keep[@]}" "$@"
}
cat >"$prefix/probe.c" <<'C'
#include <stdio.h>
#include <tokencert.h>
int main(void) { printf("%s|%s\n", tokencert_version(), tokencert_strerror(TC_ERR_TOKEN_ABSENT)); return 0; }
C
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
# The installed pkg-config file names the prefix installed to (not the configured one).
if [ "$(pkg-config --variable=prefix tokencert)" = "$prefix" ] &&
    [ "$(pkg-config --variable=libdir tokencert)" = "$prefix/$libdir" ]; then
    pass=$((pass + 1))
else
    echo "FAIL - tokencert.pc: prefix '$(pkg-config --variable=prefix tokencert)', libdir '$(pkg-config --variable=libdir tokencert)'; installed to $prefix"
    fail=$((fail + 1))
fi
# A program built only from the installed header and pkg-config file (its libdir as the program's
# run path) links and runs in a clean environment.
# shellcheck disable=SC2046,SC2086
if ${CC:-cc} ${PROBE_FLAGS:-} -o "$prefix/probe" "$prefix/probe.c" $(pkg-config --cflags --libs tokencert) \
    -Wl,-rpath,"$(pkg-config --variable=libdir tokencert)" &&
    out=$(clean "$prefix/probe") && [ "$out" = "$(pkg-config --modversion tokencert)|token not present" ]; then
    pass=$((pass + 1))
else
    echo "FAIL - a program built against the installed header and pkg-config file"
    fail=$((fail + 1))
fi
# The installed CLI starts without LD_LIBRARY_PATH (a relative run path), also when the whole tree
# is moved elsewhere, and lists tokens (p11-kit's trust module: present wherever p11-kit is).
trust=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-trust.so
mkdir -p "$prefix/home"
cp -a "$prefix" "$prefix.moved" && trap 'rm -rf "$prefix" "$prefix.moved"' EXIT
for root in "$prefix" "$prefix.moved"; do
    if out=$(clean "$root/bin/tokencert" --version 2>&1) && [ "$out" = "tokencert $(pkg-config --modversion tokencert)" ]; then
        pass=$((pass + 1))
    else
        echo "FAIL - $root/bin/tokencert --version in a clean environment: $out"
        fail=$((fail + 1))
    fi
    if out=$(clean "$root/bin/tokencert" tokens --module "$trust" 2>&1) && grep -q 'uri: *pkcs11:' <<<"$out"; then
        pass=$((pass + 1))
    else
        echo "FAIL - $root/bin/tokencert tokens --module $trust in a clean environment:"
        printf '%s\n' "$out" | head -5
        fail=$((fail + 1))
    fi
done
# shellcheck disable=SC2016 # a literal $ORIGIN
if readelf -d "$prefix/bin/tokencert" | grep -Eq '(RPATH|RUNPATH).*\[\$ORIGIN/'; then
    pass=$((pass + 1))
else
    echo "FAIL - bin/tokencert has no run path relative to \$ORIGIN:"
    readelf -d "$prefix/bin/tokencert" | grep -E 'RPATH|RUNPATH'
    fail=$((fail + 1))
fi
# The embedded CA's signer is found in the installed tree, not at the configured libexec path: a
# request submitted to a fresh CA is approved (signed by the helper), with a clean environment.
ca_run() { clean "$prefix/bin/tokencert" ca "$@" --ca-dir "$prefix/home/ca"; }
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$prefix/home/k.pem" \
    -subj /CN=install-check -out "$prefix/home/r.csr" 2>/dev/null
if out=$(ca_run init --subject CN=install-check-ca --approval manual 2>&1) &&
    { out=$(ca_run submit "$prefix/home/r.csr" 2>&1) || [ $? -eq 8 ]; } &&
    out=$(ca_run approve 1 2>&1) && grep -q 'issued' <<<"$out"; then
    pass=$((pass + 1))
else
    echo "FAIL - the installed CA signer (${signer}) was not used to approve a request:"
    printf '%s\n' "$out" | head -5
    fail=$((fail + 1))
fi
# Only the public API is exported. _edata, _end and __bss_start are not API: GNU ld defines them
# itself and re-exports them when a library linked against exports them (libconfig does).
exported() {
    nm -D --defined-only "$prefix/$libdir/libtokencert.so" | awk '{print $3}' |
        grep -v -e '^tokencert_' -e '^_edata$' -e '^_end$' -e '^__bss_start$' || true
}
if [ -n "$(exported)" ]; then
    echo "FAIL - libtokencert exports symbols outside the tokencert_ namespace:"
    exported | head
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
if man -l "$prefix/share/man/man5/tokencert.conf.5" 2>/dev/null | grep -q -- 'pin_source'; then
    pass=$((pass + 1))
else
    echo "FAIL - tokencert.conf(5) is not installed, does not render or lacks pin_source"
    fail=$((fail + 1))
fi
check "share/doc/tokencert/examples/tokencert.conf"
# The bash completion, where bash-completion looks under the prefix (completion/CMakeLists.txt).
check "$completiondir/tokencert"
# Scheduling: systemd units (system and user) and the cron example.
for unit in tokencert-renew.service tokencert-renew.timer; do
    check "$unitdir/$unit"
    check "$userunitdir/$unit"
done
check share/doc/tokencert/examples/cron.d-tokencert
# @BINDIR@ is filled in at install time with the bin directory of the prefix installed to: the
# services run renew and then poll, the cron line the same, both through the installed binary.
runs_installed() { # file, bin directory, the pattern before the binary
    local file=$1 bindir=$2 lead=$3
    [ -f "$file" ] || return 0
    if grep -q "^$lead$bindir/tokencert renew --all --due\([ ;]\|$\)" "$file" &&
        grep -q "$bindir/tokencert poll\( \|$\)" "$file" &&
        [ "$(grep -v '^#' "$file" | grep -o '[^ =]*/tokencert ' | sort -u)" = "$bindir/tokencert " ] &&
        ! grep -q '@[A-Z_]*@' "$file"; then
        pass=$((pass + 1))
    else
        echo "FAIL - $file does not run $bindir/tokencert renew and poll, or has an unsubstituted @VAR@:"
        grep -n 'tokencert \|@' "$file" | grep -v '^[0-9]*:#' || true
        fail=$((fail + 1))
    fi
}
for svc in "$unitdir/tokencert-renew.service" "$userunitdir/tokencert-renew.service"; do
    runs_installed "$prefix/$svc" "$prefix/bin" ExecStart=
    if [ -f "$prefix/$svc" ] && [ "$(grep -c '^ExecStart=' "$prefix/$svc")" -ne 2 ]; then
        echo "FAIL - $svc: expected two ExecStart= lines (renew, then poll)"
        fail=$((fail + 1))
    fi
done
runs_installed "$prefix/share/doc/tokencert/examples/cron.d-tokencert" "$prefix/bin" '[0-9*][^#]* root '
# Twice a day, randomised, catching up on missed runs (the values themselves are checked by
# systemd-analyze verify below).
for timer in "$unitdir/tokencert-renew.timer" "$userunitdir/tokencert-renew.timer"; do
    [ -f "$prefix/$timer" ] || continue
    if grep -q '^OnCalendar=' "$prefix/$timer" && grep -q '^RandomizedDelaySec=' "$prefix/$timer" &&
        grep -q '^Persistent=true$' "$prefix/$timer"; then
        pass=$((pass + 1))
    else
        echo "FAIL - $timer lacks OnCalendar=, RandomizedDelaySec= or Persistent=true"
        fail=$((fail + 1))
    fi
done
# The sandbox must leave the tokens reachable: /dev/tpmrm0 (no private /dev, no device allow-list)
# and pcscd's and tpm2-abrmd's AF_UNIX sockets.
for svc in "$unitdir/tokencert-renew.service" "$userunitdir/tokencert-renew.service"; do
    [ -f "$prefix/$svc" ] || continue
    if grep -Eq '^(PrivateDevices=(yes|true|1|on)|DevicePolicy=|DeviceAllow=|ProtectClock=(yes|true|1|on))' "$prefix/$svc" ||
        grep '^RestrictAddressFamilies=' "$prefix/$svc" | grep -vq 'AF_UNIX'; then
        echo "FAIL - $svc hides the token devices or sockets:"
        grep -En '^(PrivateDevices|DevicePolicy|DeviceAllow|ProtectClock|RestrictAddressFamilies)=' "$prefix/$svc"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
# A packager's staged install (DESTDIR, the configured prefix): the files name the binary where
# it will be installed, not where it was staged.
stage=$prefix/stage
cfgprefix=$(cache_value CMAKE_INSTALL_PREFIX)
cfgbindir=$(cache_value CMAKE_INSTALL_BINDIR)
case $cfgbindir in /*) ;; *) cfgbindir=${cfgprefix%/}/$cfgbindir ;; esac
if DESTDIR=$stage cmake --install "$build" >/dev/null; then
    for svc in "$unitdir/tokencert-renew.service" "$userunitdir/tokencert-renew.service"; do
        check "stage/${cfgprefix#/}/$svc"
        runs_installed "$stage/${cfgprefix#/}/$svc" "$cfgbindir" ExecStart=
    done
    runs_installed "$stage/${cfgprefix#/}/share/doc/tokencert/examples/cron.d-tokencert" \
        "$cfgbindir" '[0-9*][^#]* root '
    if [ "$(sed -n 's/^prefix=//p' "$stage/${cfgprefix#/}/$libdir/pkgconfig/tokencert.pc")" = "${cfgprefix%/}" ]; then
        pass=$((pass + 1))
    else
        echo "FAIL - the staged tokencert.pc does not name the configured prefix $cfgprefix"
        fail=$((fail + 1))
    fi
    if grep -rq -- "$stage" "$stage/${cfgprefix#/}/$unitdir" "$stage/${cfgprefix#/}/$userunitdir"; then
        echo "FAIL - the staged units name the staging directory $stage"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
else
    echo "FAIL - DESTDIR=$stage cmake --install"
    fail=$((fail + 1))
fi
# systemd-analyze verify checks syntax, that ExecStart= binaries exist and are executable, that
# the timer's service loads and (via MANPATH) that the Documentation= man pages exist. It only
# warns about unknown keys and bad values with exit status 0, so any output is a failure too.
# A missing systemd-analyze is a failure, not a skip (scripts/setup.sh installs systemd).
verify_units() { # label, extra systemd-analyze options..., then the unit files after --
    local label=$1 out rc
    shift
    out=$(MANPATH=$prefix/share/man systemd-analyze "$@" 2>&1) && rc=0 || rc=$?
    if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
        pass=$((pass + 1))
    else
        echo "FAIL - systemd-analyze verify of the $label units (exit $rc):"
        printf '%s\n' "$out"
        fail=$((fail + 1))
    fi
}
if ! command -v systemd-analyze >/dev/null; then
    echo "FAIL - systemd-analyze not found (install the systemd package: scripts/setup.sh)"
    fail=$((fail + 1))
else
    verify_units system verify "$prefix/$unitdir/tokencert-renew.service" \
        "$prefix/$unitdir/tokencert-renew.timer"
    # The user manager needs a runtime directory even for verify.
    runtime=$(mktemp -d)
    XDG_RUNTIME_DIR=$runtime verify_units user --user verify \
        "$prefix/$userunitdir/tokencert-renew.service" "$prefix/$userunitdir/tokencert-renew.timer"
    rm -rf "$runtime"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
