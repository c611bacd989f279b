#!/usr/bin/env bash
# The bash completion (built from completion/tokencert.bash and the man page sources) completes
# commands, each command's options exactly as its --help lists them, option arguments, token and
# object URIs (asking tokencert only when a URI is being completed), credential and CA names; and
# bash-completion's on-demand loader loads it.
# Usage: completion_check.sh COMPLETION-FILE TOKENCERT MOCK-MODULE SOURCE_DIR
set -uo pipefail
completion=$1
tokencert=$2
mock=$3
src=$4
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    echo "FAIL - $*"
    fail=$((fail + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=/dev/null
. "$completion"

# complete LINE: runs the completion function as bash would with the cursor at the end of LINE
# (COMP_WORDS split at blanks, as the tests need no more); the candidates in $out, one a line.
complete_line() {
    local line=$1
    read -r -a COMP_WORDS <<<"$line"
    [[ $line == *' ' ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$line
    COMP_POINT=${#line}
    COMPREPLY=()
    _tokencert tokencert "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    out=$(printf '%s\n' "${COMPREPLY[@]}" | sort)
}
expect_exactly() { # line, candidates (one a line)
    complete_line "$1"
    if [ "$out" = "$(printf '%s\n' "$2" | sort)" ]; then ok; else
        bad "'$1<TAB>' offers [${out//$'\n'/ }], expected [${2//$'\n'/ }]"
    fi
}
expect_has() { # line, candidate
    complete_line "$1"
    if grep -qxF -- "$2" <<<"$out"; then ok; else bad "'$1<TAB>' does not offer '$2' (offers: ${out//$'\n'/ })"; fi
}

T=$tokencert
# Commands: exactly those of tools/main.c's table.
commands=$(grep -o '{"[a-z]*", cmd_[a-z]*}' "$src/tools/main.c" | sed 's/{"\([a-z]*\)".*/\1/')
expect_exactly "$T " "$commands"
expect_exactly "$T re" renew
expect_exactly "$T p" $'poll\nprune'
expect_exactly "$T --" $'--help\n--version'

# Options: for every command, the options its --help lists (the definition terms of OPTIONS),
# no more, no fewer.
for c in $commands; do
    want=$("$tokencert" "$c" --help | sed -n '/^OPTIONS/,/^[A-Z]/p' | grep -E '^    -' |
        grep -oE -- '(^|[ ,])--?[a-z][a-z0-9-]*' | sed 's/^[ ,]*//' | sort -u)
    if [ -z "$want" ]; then
        bad "tokencert $c --help lists no options"
        continue
    fi
    complete_line "$T $c -"
    if [ "$out" = "$want" ]; then ok; else
        bad "'tokencert $c -<TAB>' offers [${out//$'\n'/ }], its --help lists [${want//$'\n'/ }]"
    fi
done
expect_has "$T import --" --label
expect_exactly "$T import --la" --label
expect_exactly "$T ca init --approval " $'auto\nmanual'
expect_exactly "$T list --pin-source " $'env:\nfd:\nfile:'
expect_exactly "$T ca s" submit
expect_exactly "$T ca " $'approve\ncert\ninit\nlist\nreject\nsubmit'
expect_exactly "$T config " check
touch "$tmp/office.p12" "$tmp/other.crt"
expect_exactly "$T import pkcs11:token=x $tmp/off" "$tmp/office.p12"
expect_exactly "$T list --module $tmp/oth" "$tmp/other.crt"

# Token URIs from the real binary (the mock module's token). Readline replaces only what follows
# the last ':' or '=', so the candidates are cut there.
token_uri='pkcs11:model=mock;manufacturer=tokencert;serial=MOCK0001;token=tokencert%20mock'
expect_exactly "$T list --module $mock " "$token_uri"
expect_exactly "$T keygen --module $mock pkcs11:" "${token_uri#pkcs11:}"
expect_exactly "$T keygen --module $mock pkcs11:model=mo" "${token_uri#pkcs11:model=}"
expect_exactly "$T keygen --module $mock 'pkcs11:model=mo" "$token_uri"
expect_exactly "$T keygen --module $mock pkcs11:model=x" ""

# A stand-in tokencert: object URIs, configured names and pending CA requests, and a log of what
# the completion asked it.
stub=$tmp/tokencert
cat >"$stub" <<STUB
#!/bin/sh
echo "\$*" >>"$tmp/asked"
case "\$1 \$2" in
"list --json") printf '%s\n' '{"tokens": [{"uri": "pkcs11:token=t1", "credentials": [' \
    '{"uri":"pkcs11:token=t1;id=%01;object=alice;type=cert"},' \
    '{"uri": "pkcs11:token=t1;id=%01;object=alice;type=private"}]}]}' ;;
"tokens --json") echo '{"tokens": [{"uri": "pkcs11:token=t1"}]}' ;;
"config check") printf '%s\n' "read /etc/tokencert/tokencert.conf" "CA 'local': the embedded CA" \
    "CA 'kv-north' (x:3): protocol est" "credential 'office' (x:9)" "    token pkcs11:token=t1" ;;
"history --json") echo '{"events": [{"credential": "vpn"}, {"credential": "office"}]}' ;;
"ca list") printf '%s\n' '{"requests": [' '{"id": 3, "subject": "CN=a", "state": "pending"},' \
    '{"id": 4, "subject": "CN=b", "state": "issued"}]}' ;;
esac
STUB
chmod +x "$stub"
S=$stub
: >"$tmp/asked"
expect_exactly "$S import --" "$(complete_line "$T import --"; echo "$out")"
expect_exactly "$S renew --due" --due
if [ -s "$tmp/asked" ]; then
    bad "completing options ran tokencert: $(cat "$tmp/asked")"
else
    ok
fi
expect_exactly "$S export " $'pkcs11:token=t1;id=%01;object=alice;type=cert\npkcs11:token=t1;id=%01;object=alice;type=private'
expect_exactly "$S delete pkcs11:token=t1\\;id=%01\\;object=alice\\;type=p" private
expect_exactly "$S csr \"pkcs11:token=t1;id=%01;object=alice;type=p" \
    'pkcs11:token=t1;id=%01;object=alice;type=private'
expect_exactly "$S import " 'pkcs11:token=t1'
expect_exactly "$S renew " $'office\nvpn'
expect_exactly "$S status o" office
expect_exactly "$S enroll --ca " $'kv-north\nlocal'
expect_exactly "$S ca approve " 3
# The options that decide what tokencert sees are passed on.
: >"$tmp/asked"
complete_line "$S list --module /x.so pkcs11:"
if grep -qx 'tokens --json --module /x.so' "$tmp/asked"; then ok; else
    bad "the URI lookup did not pass --module on (asked: $(cat "$tmp/asked"))"
fi

# bash-completion loads the file on demand, by the command's name, from a completions directory.
bc=$(pkg-config --variable=datadir bash-completion 2>/dev/null)/bash-completion/bash_completion
if [ ! -f "$bc" ]; then
    bad "bash-completion is not installed (scripts/setup.sh installs it)"
else
    mkdir -p "$tmp/user/completions"
    cp "$completion" "$tmp/user/completions/tokencert"
    loaded=$(BASH_COMPLETION_USER_DIR=$tmp/user bash --norc -c '
        . "$1" && __load_completion tokencert && complete -p tokencert &&
        echo "${_tokencert_options[import]}"' _ "$bc" 2>&1)
    if grep -q 'complete -F _tokencert tokencert' <<<"$loaded" && grep -q -- '--label=LABEL' <<<"$loaded"; then
        ok
    else
        bad "bash-completion does not load the completion: $loaded"
    fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
