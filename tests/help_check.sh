#!/usr/bin/env bash
# Every command's --help text, rendered from docs/man/*.1.md at build time, says what its Markdown
# source says: identifiers (CKA_ID, C_CreateObject, not_before, --pin-source) come through
# verbatim, code blocks (synopses, examples) line for line, and no Markdown or renderer markup is
# left over. tokencert --help names every command of tools/main.c's table in its synopsis and SEE
# ALSO. The man pages (built from the same sources, rendered by man(1)) keep the same identifiers
# and code lines. Usage: help_check.sh TOKENCERT SOURCE_DIR MAN_PAGE_DIR
set -uo pipefail
tokencert=$1
src=$2
mandir=$3
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
    echo "FAIL - $*"
    fail=$((fail + 1))
}

# The commands the binary dispatches: {"name", cmd_name} entries of main.c's table.
mapfile -t commands < <(grep -o '{"[a-z]*", cmd_[a-z]*}' "$src/tools/main.c" | sed 's/{"\([a-z]*\)".*/\1/')
if [ "${#commands[@]}" -lt 10 ]; then
    bad "found only ${#commands[@]} commands in tools/main.c"
fi

check_text() { # what (for messages), markdown source, rendered text
    local what=$1 md=$2 text=$3 body line tok stray
    # The source without its metadata block (title:, section: ...), as md2help.cmake does.
    body=$(sed '1,/^$/{/^[a-z]*:/d}' "$md")

    # Identifier-like tokens: words with underscores (CKA_ID, C_Login, CKR_PIN_LOCKED,
    # XDG_STATE_HOME, not_before) and long options.
    while IFS= read -r tok; do
        if grep -qF -- "$tok" <<<"$text"; then ok; else bad "$what lacks '$tok' ($md)"; fi
    done < <(grep -oE -- '[A-Za-z0-9]+(_[A-Za-z0-9]+)+|--[a-z][a-z0-9-]*[a-z0-9]' <<<"$body" | sort -u)

    # Code blocks (four-space indented lines outside definitions): each line as written.
    while IFS= read -r line; do
        if grep -qF -- "$line" <<<"$text"; then ok; else bad "$what lacks the line '$line'"; fi
    done < <(awk '/^$/ {blank = 1; next}
                  /^    / && (blank || code) {code = 1; sub(/^    /, ""); print; blank = 0; next}
                  {code = 0; blank = 0}' <<<"$body")

    # Leftovers: a renderer's code-block or quote bar, a definition's colon, backticks, emphasis
    # markers, headings (## ), links, the backslash escapes of _ * and `.
    # shellcheck disable=SC2016 # backticks, not an expansion
    stray=$(grep -nE '^ *\|( |$)|^ *: |`|\*\*|^#+ |\]\(|\\[_*`]' <<<"$text")
    if [ -z "$stray" ]; then
        ok
    else
        bad "$what has leftover markup:"
        printf '%s\n' "$stray" | head -5
    fi
}

check_page() { # markdown source, command words...
    local md=$1 help
    shift
    if help=$("$tokencert" "$@" --help 2>&1); then
        check_text "tokencert $* --help" "$md" "$help"
    else
        bad "tokencert $* --help fails"
    fi
    check_man "$md"
}

check_man() { # markdown source: its man page, rendered without line breaks or hyphenation
    local page text
    page=$mandir/$(basename "$1" .md)
    if [ ! -f "$page" ]; then
        bad "no man page $page"
    elif text=$(LC_ALL=C.UTF-8 MANWIDTH=1000 man -l "$page" 2>&1); then
        check_text "man page $(basename "$page")" "$1" "$text"
    else
        bad "man -l $page fails: $text"
    fi
}

if ! command -v man >/dev/null; then
    bad "man not found (install man-db: scripts/setup.sh)"
fi
check_page "$src/docs/man/tokencert.1.md"
check_man "$src/docs/man/tokencert.conf.5.md"
for c in "${commands[@]}"; do
    md=$src/docs/man/tokencert-$c.1.md
    if [ -f "$md" ]; then ok; else
        bad "command '$c' has no man page source $md"
        continue
    fi
    check_page "$md" "$c"
done

# tokencert --help: every command in the synopsis and in SEE ALSO (and ca submit).
top=$("$tokencert" --help)
synopsis=$(sed -n '/^SYNOPSIS/,/^[A-Z]/p' <<<"$top")
seealso=$(sed -n '/^SEE ALSO/,$p' <<<"$top")
for c in "${commands[@]}"; do
    if grep -qE "^ +tokencert $c( |$)" <<<"$synopsis"; then ok; else
        bad "tokencert --help: no synopsis line for '$c'"
    fi
    if grep -qF "tokencert-$c(1)" <<<"$seealso"; then ok; else
        bad "tokencert --help: SEE ALSO lacks tokencert-$c(1)"
    fi
done
if grep -qE '^ +tokencert ca submit ' <<<"$synopsis"; then ok; else
    bad "tokencert --help: no synopsis line for 'ca submit'"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
