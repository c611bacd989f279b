#!/usr/bin/env bash
# `tokencert config check`: the annotated example passes; a file with several errors reports each
# with its file and line (exit 9); a syntax error, an unknown CA, a secret written into the file
# (not repeated in the message), a file others can write or another user owns, and an included
# file others can write are refused; a --config file that cannot be read is exit 10; the user's
# file replaces the system file's entry of the same name, and errors come in the order the files
# are read; no file at all is fine. Renew refuses a broken configuration before touching the token.
set -euo pipefail
. "$(dirname "$0")/../lib/harness.sh"

tc_require_tokencert
tc_world_init
W=$TC_WORLD
SRC=${TC_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
mkdir -p "$W/etc" "$W/config/tokencert"

# No configuration at all.
tc_expect_exit 0 "$TOKENCERT" config check
tc_assert_contains "$TC_OUT" "no configuration file" "no file: said so"
tc_assert_contains "$TC_OUT" "CA 'local': the embedded CA" "no file: the embedded CA is known"
tc_assert_contains "$TC_OUT" "OK: 0 CAs and 0 credentials" "no file: nothing configured"
tc_assert_contains "$TC_OUT" "renew_before 30d, renew_fraction 0.1, grace 30d" "no file: the defaults"

# The annotated example.
tc_expect_exit 0 "$TOKENCERT" config check --config "$SRC/docs/examples/tokencert.conf"
tc_assert_contains "$TC_OUT" "OK: 2 CAs and 3 credentials configured" "the example passes"
tc_assert_contains "$TC_OUT" "hook after_renewal   /usr/bin/systemctl reload openvpn-client@praxis" \
    "the example: its hook as an argument list"

# Three errors on lines 3, 5 and 6, one of them a secret: all reported, in order, with file:line.
cat >"$W/bad.conf" <<'EOF'
# line 1
credentials = (
  { name = "office"; token = "pkcs11:token=x"; ca = "kv-nowhere";
    subject = "CN=1234567890";
    renew_before = "soon";
    pin = "4711-secret"; }
);
EOF
tc_expect_exit 9 "$TOKENCERT" config check --config "$W/bad.conf"
tc_assert_match "$TC_ERR" "^$W/bad.conf:3: credential 'office': unknown CA 'kv-nowhere' \(known: local\)" \
    "unknown CA: named, with file:line and the known ones"
tc_assert_match "$TC_ERR" "^$W/bad.conf:5: credential 'office': renew_before must be a duration" \
    "malformed duration: file:line"
tc_assert_match "$TC_ERR" "^$W/bad.conf:6: credential 'office': 'pin': secrets are not stored.*pin_source" \
    "a secret in the file: file:line, and where to put it instead"
tc_assert_not_contains "$TC_ERR" "4711-secret" "the secret is not repeated"
tc_assert_contains "$TC_ERR" "3 errors in the configuration" "the count"
tc_assert_eq "3 5 6" "$(grep -o "^$W/bad.conf:[0-9]*" <<<"$TC_ERR" | sed 's/.*://' | tr '\n' ' ' | sed 's/ $//')" \
    "sorted by line"

# Renew with that configuration: refused before anything is touched, same messages.
tc_expect_exit 9 "$TOKENCERT" renew --all --config "$W/bad.conf" --module "$MODULE"
tc_assert_match "$TC_ERR" "bad.conf:3: .*unknown CA" "renew: the same report"
tc_assert_eq no "$(if [ -e "$TOKENCERT_STATE_DIR/state.db" ]; then echo yes; else echo no; fi)" \
    "renew: no state store created"

# A CA's password: refused, pointing at secret_source; a PIN at the top level too.
cat >"$W/password.conf" <<'EOF'
pin = "123456";
cas = ( { name = "est1"; protocol = "est"; url = "https://ca.example";
          auth = "basic"; user = "me"; password = "hunter2"; } );
EOF
tc_expect_exit 9 "$TOKENCERT" config check --config "$W/password.conf"
tc_assert_match "$TC_ERR" "^$W/password.conf:1: 'pin': secrets are not stored" "a PIN at the top level"
tc_assert_match "$TC_ERR" "^$W/password.conf:3: CA 'est1': 'password': secrets are not stored.*secret_source" \
    "a CA password: refused, secret_source advised"
tc_assert_not_contains "$TC_ERR" "hunter2" "the password is not repeated"
tc_assert_not_contains "$TC_ERR" "123456" "the PIN is not repeated"

# A syntax error.
printf 'cas = (\n  { name = "x"; protocol = ; }\n);\n' >"$W/syntax.conf"
tc_expect_exit 9 "$TOKENCERT" config check --config "$W/syntax.conf"
tc_assert_match "$TC_ERR" "^$W/syntax.conf:2: syntax error" "syntax error: file:line"

# An unknown key, with a suggestion.
printf 'credentials = ( { name = "o"; token = "pkcs11:token=x"; renew_befor = "30d"; } );\n' >"$W/typo.conf"
tc_expect_exit 9 "$TOKENCERT" config check --config "$W/typo.conf"
tc_assert_match "$TC_ERR" "typo.conf:1: .*renew_befor.*renew_before" "unknown key: named, with the likely one"

# A hook that is not an absolute path, a token URI that names an object.
cat >"$W/hook.conf" <<'EOF'
credentials = ( { name = "o"; token = "pkcs11:token=x;object=y";
  hooks = { after_renewal = [ "systemctl", "reload", "x" ]; }; } );
EOF
tc_expect_exit 9 "$TOKENCERT" config check --config "$W/hook.conf"
tc_assert_match "$TC_ERR" "hook.conf:1: .*token must name the token only" "a token URI naming an object"
tc_assert_match "$TC_ERR" "hook.conf:2: .*must be an absolute path" "a relative hook program"

# A file others can write.
cp "$SRC/docs/examples/tokencert.conf" "$W/open.conf"
chmod 666 "$W/open.conf"
tc_expect_exit 9 "$TOKENCERT" config check --config "$W/open.conf"
tc_assert_match "$TC_ERR" "^tokencert: $W/open.conf is writable by others: refused" "world-writable: refused"
tc_assert_contains "$TC_ERR" "1 error in the configuration" "world-writable: one error, the file not read"

# An included file others can write, named relative to the including file and checked from
# another directory: refused all the same.
mkdir -p "$W/inc"
printf '@include "cas.conf"\ncredentials = ( { name = "o"; token = "pkcs11:token=x"; ca = "inc"; } );\n' \
    >"$W/inc/main.conf"
printf 'cas = ( { name = "inc"; protocol = "local"; } );\n' >"$W/inc/cas.conf"
pushd / >/dev/null
tc_expect_exit 0 "$TOKENCERT" config check --config "$W/inc/main.conf"
tc_assert_contains "$TC_OUT" "read $W/inc/cas.conf" "an included file: listed among the files read"
chmod 666 "$W/inc/cas.conf"
tc_expect_exit 9 "$TOKENCERT" config check --config "$W/inc/main.conf"
popd >/dev/null
tc_assert_contains "$TC_ERR" "$W/inc/cas.conf is writable by others: refused" \
    "an included file others can write: refused"

# A FIFO as the configuration or in an @include (also one level down) waited for a writer for
# ever (issue 16, defect 12): each is refused at once, named.
mkfifo "$W/fifo.conf"
tc_expect_exit 10 timeout 20 "$TOKENCERT" config check --config "$W/fifo.conf"
tc_assert_contains "$TC_ERR" "cannot read configuration $W/fifo.conf: not a regular file" "a FIFO as --config: refused at once"
printf '@include "fifo.conf"\n' >"$W/incfifo.conf"
printf '@include "incfifo.conf"\n' >"$W/incfifo2.conf"
for f in incfifo incfifo2; do
    tc_expect_exit 9 timeout 20 "$TOKENCERT" config check --config "$W/$f.conf"
    tc_assert_contains "$TC_ERR" "$W/fifo.conf is not a regular file: refused" "a FIFO in an @include ($f): refused at once, named"
done

# A file another (non-root) user owns; only root can make one.
if [ "$(id -u)" -eq 0 ]; then
    cp "$SRC/docs/examples/tokencert.conf" "$W/theirs.conf"
    chown 65534 "$W/theirs.conf"
    tc_expect_exit 9 "$TOKENCERT" config check --config "$W/theirs.conf"
    tc_assert_contains "$TC_ERR" "$W/theirs.conf belongs to another user (uid 65534): refused" \
        "another user's file: refused"
else
    tc_log "not root: a file owned by another user cannot be made here"
fi

# A --config file that is not there.
tc_expect_exit 10 "$TOKENCERT" config check --config "$W/none.conf"
tc_assert_contains "$TC_ERR" "cannot read configuration $W/none.conf" "missing --config file: named"
tc_expect_exit 2 "$TOKENCERT" config frobnicate
tc_expect_exit 2 "$TOKENCERT" config

# System and user files: the user's entry replaces the system's of the same name.
cat >"$TOKENCERT_CONFIG_SYSTEM" <<'EOF'
defaults = { renew_before = "40d"; };
credentials = (
  { name = "office"; token = "pkcs11:token=system"; subject = "CN=1111111111"; },
  { name = "lab"; token = "pkcs11:token=lab"; subject = "CN=2222222222"; }
);
EOF
cat >"$XDG_CONFIG_HOME/tokencert/tokencert.conf" <<'EOF'
credentials = ( { name = "office"; token = "pkcs11:token=mine"; subject = "CN=3333333333"; } );
EOF
tc_expect_exit 0 "$TOKENCERT" config check
tc_assert_contains "$TC_OUT" "read $TOKENCERT_CONFIG_SYSTEM" "the system file is read"
tc_assert_contains "$TC_OUT" "read $XDG_CONFIG_HOME/tokencert/tokencert.conf" "then the user's"
tc_assert_contains "$TC_OUT" "token pkcs11:token=mine" "the user's office replaces the system's"
tc_assert_not_contains "$TC_OUT" "pkcs11:token=system" "the system's office is gone"
tc_assert_contains "$TC_OUT" "token pkcs11:token=lab" "the system's lab stays"
tc_assert_contains "$TC_OUT" "renew_before 40d" "the system's defaults apply"
tc_assert_contains "$TC_OUT" "OK: 0 CAs and 2 credentials" "two credentials in all"

# Errors in both: the system file's first (the order read), then the user's, each by line, though
# the unknown CA in the system file is found last (once every file is in).
cat >"$TOKENCERT_CONFIG_SYSTEM" <<'EOF'
credentials = (
  { name = "lab"; token = "pkcs11:token=lab"; ca = "kv-nowhere"; }
);
EOF
cat >"$XDG_CONFIG_HOME/tokencert/tokencert.conf" <<'EOF'
credentials = ( { name = "office"; token = "pkcs11:token=mine";
  renew_before = "soon"; } );
EOF
tc_expect_exit 9 "$TOKENCERT" config check
tc_assert_eq "$TOKENCERT_CONFIG_SYSTEM:2 $XDG_CONFIG_HOME/tokencert/tokencert.conf:2" \
    "$(grep -o '^[^ ]*:[0-9]*:' <<<"$TC_ERR" | sed 's/:$//' | tr '\n' ' ' | sed 's/ $//')" \
    "errors: the system file's, then the user's"


# ---------------------------------------------------------------------------------------------
# The state store names the module renew loads (issue 16, defect 2): held to the rules of the
# configuration. A store recording the fault module for a credential: renew loads it (its count
# file shows C_Initialize); each bad store is refused, named, before any module is loaded.
if [ -n "${TC_FAULTMOD-}" ] && [ -f "$TC_FAULTMOD" ] && command -v sqlite3 >/dev/null; then
    S=$W/store/state
    mkdir -p "$S"
    chmod 700 "$W/store" "$S"
    NOCONF=(TOKENCERT_CONFIG_SYSTEM="$W/none.conf" XDG_CONFIG_HOME="$W/no-xdg")
    tc_expect_exit 0 env "${NOCONF[@]}" TOKENCERT_STATE_DIR="$S" "$TOKENCERT" renew --all
    sqlite3 "$S/state.db" "INSERT INTO credentials (name, token_uri, label, ca, module, created)
        VALUES ('c1', 'pkcs11:token=nowhere', 'c1', 'local', '$TC_FAULTMOD', 1)"
    COUNT=$W/fault-count
    # store_run DIR: renew --all with the store in DIR, the fault module's calls counted.
    store_run() {
        rm -f "$COUNT"
        tc_expect_exit "$1" env "${NOCONF[@]}" TOKENCERT_STATE_DIR="$2" TC_FAULT_TARGET="$MODULE" \
            TC_FAULT_COUNT_FILE="$COUNT" timeout 60 "$TOKENCERT" renew --all
    }
    no_module() {
        tc_assert_eq no "$(if [ -e "$COUNT" ]; then echo yes; else echo no; fi)" "$1: no module loaded"
    }
    store_run 5 "$S"
    tc_assert_contains "$(cat "$COUNT" 2>/dev/null)" "C_Initialize" "a good store: the module it records is loaded"

    chmod 777 "$S"
    store_run 9 "$S"
    tc_assert_contains "$TC_ERR" "the state directory '$S' is writable by group or others (mode 0777): refused" "world-writable state directory: refused, named"
    no_module "world-writable state directory"
    chmod 700 "$S"

    chmod 620 "$S/state.db"
    store_run 9 "$S"
    tc_assert_contains "$TC_ERR" "the state store '$S/state.db' is writable by group or others (mode 0620): refused" "group-writable state.db: refused, named"
    no_module "group-writable state.db"
    chmod 600 "$S/state.db"

    ln -s "$S" "$W/store/link"
    store_run 9 "$W/store/link"
    tc_assert_contains "$TC_ERR" "the state directory '$W/store/link' is a symbolic link: refused" "symlinked state directory: refused, named"
    no_module "symlinked state directory"

    pushd "$W/store" >/dev/null
    store_run 9 state
    popd >/dev/null
    tc_assert_contains "$TC_ERR" "the state directory 'state' is not an absolute path: refused" "relative state directory: refused, named"
    no_module "relative state directory"

    if [ "$(id -u)" -eq 0 ]; then
        chown 65534 "$S/state.db"
        store_run 9 "$S"
        tc_assert_contains "$TC_ERR" "the state store '$S/state.db' belongs to another user (uid 65534): refused" "another user's state.db: refused, named"
        no_module "another user's state.db"
        chown 0 "$S/state.db"
        chown 65534 "$S"
        store_run 9 "$S"
        tc_assert_contains "$TC_ERR" "the state directory '$S' belongs to another user (uid 65534): refused" "another user's state directory: refused, named"
        no_module "another user's state directory"
        chown 0 "$S"
    fi
    store_run 5 "$S"
    tc_assert_contains "$(cat "$COUNT" 2>/dev/null)" "C_Initialize" "the store set right again: used again"
else
    tc_log "no fault module or sqlite3: the state store's checks are in unit-state only"
fi

tc_finish
