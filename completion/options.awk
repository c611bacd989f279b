# Builds tokencert's bash completion from the Markdown man page sources (docs/man/*.1.md), so that
# the options it offers cannot drift from the documented ones:
#   awk -v out=FILE -f options.awk docs/man/tokencert-*.1.md tokencert.bash
# Every definition term of a page (a line of `-x`/`--option ARG` code spans followed by a ": "
# definition line) gives the command's options; an option with a placeholder takes an argument.
# The last file, the completion itself, is copied with its "# @OPTIONS@" line replaced.
FNR == 1 {
    cmd = ""
    if (FILENAME ~ /\.md$/) {
        cmd = FILENAME
        sub(/.*\/tokencert-/, "", cmd)
        sub(/\.1\.md$/, "", cmd)
        if (cmd ~ /[^a-z]/)
            cmd = ""
        if (cmd != "")
            commands = commands (commands == "" ? "" : " ") cmd
    }
    term = ""
}
FILENAME ~ /\.md$/ {
    if (cmd != "" && term != "" && $0 ~ /^: /)
        addterm(term)
    term = ($0 ~ /^`-/) ? $0 : ""
    next
}
$0 == "# @OPTIONS@" {
    print "_tokencert_commands='" commands "'" > out
    for (i = 1; i <= n; i++)
        print "_tokencert_options[" names[i] "]='" opts[names[i]] "'" > out
    next
}
FILENAME !~ /\.md$/ { print > out }

function addterm(line,    parts, k, i2, span, opt, arg) {
    # `--label LABEL`, `-o FILE`, `--output FILE`, `--approval auto|manual`
    k = split(line, parts, "`")
    for (i2 = 2; i2 <= k; i2 += 2) {
        span = parts[i2]
        if (span !~ /^--?[a-z]/)
            continue
        opt = span
        sub(/ .*/, "", opt)
        arg = ""
        if (span ~ / /) {
            arg = span
            sub(/^[^ ]* /, "", arg)
        }
        gsub(/ /, "_", arg)
        add(cmd, arg == "" ? opt : opt "=" arg)
    }
}
function add(c, o) {
    if (!(c in opts)) {
        names[++n] = c
        opts[c] = o
    } else if (index(" " opts[c] " ", " " o " ") == 0) {
        opts[c] = opts[c] " " o
    }
}
