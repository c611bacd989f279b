#!/usr/bin/env bash
# Installs every Debian bookworm package that building, the demo and the full test suite need.
# Idempotent: packages already present are left alone. Uses sudo when not run as root.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
    libp11-kit-dev p11-kit p11-kit-modules libssl-dev openssl libjson-c-dev libcmocka-dev libsqlite3-dev sqlite3
    libconfig-dev
    libldap-dev
    libcurl4-openssl-dev # the network CA protocols (src/enroll/http.c)
    lowdown
    bash-completion # its pkg-config file places the completion; the completion test loads it
    # tokens and independent cross-check tools
    softhsm2 opensc gnutls-bin
    libnss3-tools # certutil, modutil: NSS through the filter module (tests/integration/module.sh)
    swtpm swtpm-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools tpm2-abrmd libtss2-tcti-tabrmd0
    tpm2-tools dbus
    golang-cfssl # the cfssl CA (tests/integration/cfssl.sh)
    # test and benchmark helpers
    valgrind hyperfine time python3 iproute2 util-linux bsdutils
    systemd # systemd-analyze verify of the installed units (install test)
    man-db  # the install test renders an installed man page
    # benchmark anchors only (the libp11 engine; tokencert itself never uses ENGINEs)
    libengine-pkcs11-openssl
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
