# bash completion for tokencert(1): commands, each command's options (generated from the man page
# sources, see options.awk), token and object URIs (asked of tokencert itself, only when a URI is
# being completed), credential and CA names, embedded-CA request ids, files.
# shellcheck shell=bash disable=SC2034

declare -gA _tokencert_options
# @OPTIONS@

# The current command line up to the cursor as shell words, dequoted: _tokencert_words, and
# _tokencert_raw, the word being completed as typed (quotes and backslashes included).
_tokencert_split() {
    local line=$1 c q="" w="" raw="" inword=0 i
    _tokencert_words=()
    for ((i = 0; i < ${#line}; i++)); do
        c=${line:i:1}
        if [ -n "$q" ]; then
            raw+=$c
            if [ "$c" = "$q" ]; then q=""; elif [ "$q" = '"' ] && [ "$c" = "\\" ] && ((i + 1 < ${#line})); then
                i=$((i + 1)); raw+=${line:i:1}; w+=${line:i:1}
            else w+=$c; fi
            continue
        fi
        case $c in
        ' ' | $'\t')
            if ((inword)); then _tokencert_words+=("$w"); fi
            w="" raw="" inword=0
            ;;
        "'" | '"') q=$c raw+=$c inword=1 ;;
        "\\")
            raw+=$c inword=1
            if ((i + 1 < ${#line})); then i=$((i + 1)); raw+=${line:i:1}; w+=${line:i:1}; fi
            ;;
        *) w+=$c raw+=$c inword=1 ;;
        esac
    done
    _tokencert_words+=("$w")
    _tokencert_raw=$raw
}

# Offers WORDS (one a line) that start with cur. Readline replaces only the text after the last
# unquoted word-break character (the ':' and '=' of a URI), so that much is cut from each match;
# readline quotes what it inserts (-o filenames), so that the ';' of a URI does not end the command.
_tokencert_offer() {
    local cur=$1 words=$2 raw=$_tokencert_raw breaks=${COMP_WORDBREAKS-$' \t\n"\'><=;|&(:'}
    local c q="" i last=-1 pre="" w
    for ((i = 0; i < ${#raw}; i++)); do
        c=${raw:i:1}
        if [ -n "$q" ]; then
            [ "$c" = "$q" ] && q=""
            continue
        fi
        case $c in
        "'" | '"') q=$c ;;
        "\\") i=$((i + 1)) ;;
        *) case $breaks in *"$c"*) last=$i ;; esac ;;
        esac
    done
    # The dequoted text up to and including that character (no quotes: none was open before it).
    for ((i = 0; i <= last; i++)); do
        c=${raw:i:1}
        case $c in
        "'" | '"') ;;
        "\\") i=$((i + 1)) pre+=${raw:i:1} ;;
        *) pre+=$c ;;
        esac
    done
    compopt -o filenames 2>/dev/null
    while IFS= read -r w; do
        if [ -n "$w" ] && [[ $w == "$cur"* ]]; then COMPREPLY+=("${w#"$pre"}"); fi
    done <<<"$words"
}

# Runs tokencert (the one being completed) quietly, with the options that decide what it sees.
_tokencert_ask() {
    local -a pass=()
    local i
    for ((i = 1; i < ${#_tokencert_words[@]} - 1; i++)); do
        case ${_tokencert_words[i]} in
        --module | --config | --state-dir | --ca-dir) pass+=("${_tokencert_words[i]}" "${_tokencert_words[i + 1]}") ;;
        esac
    done
    timeout 5 "$_tokencert_bin" "$@" "${pass[@]}" 2>/dev/null </dev/null
}

_tokencert_uris() { # tokens (token URIs) | list (object URIs)
    _tokencert_ask "$1" --json | grep -o '"uri": *"pkcs11:[^"]*"' | sed 's/^"uri": *"//; s/"$//; s#\\/#/#g' |
        if [ "$1" = list ]; then grep '[:;]type='; else cat; fi
}

_tokencert_names() { # credential | CA
    if [ "$1" = credential ]; then
        _tokencert_ask config check | sed -n "s/^credential '\\([^']*\\)'.*/\\1/p"
        _tokencert_ask history --json --wait 0 | grep -o '"credential": *"[^"]*"' | sed 's/.*: *"//; s/"$//'
    else
        _tokencert_ask config check | sed -n "s/^CA '\\([^']*\\)'.*/\\1/p"
    fi | sort -u
}

_tokencert() {
    local line=${COMP_LINE:0:${COMP_POINT:-${#COMP_LINE}}} cur prev cmd="" sub="" spec o arg i npos=0
    if [ -z "${COMP_LINE+set}" ]; then # called without a line: rebuild it from COMP_WORDS
        line="${COMP_WORDS[*]:0:COMP_CWORD+1}"
    fi
    COMPREPLY=()
    _tokencert_split "$line"
    _tokencert_bin=${_tokencert_words[0]}
    case $_tokencert_bin in */*) ;; *) _tokencert_bin=$(type -P "$_tokencert_bin") || _tokencert_bin=tokencert ;; esac
    local n=${#_tokencert_words[@]}
    cur=${_tokencert_words[n - 1]}
    prev=""
    ((n >= 2)) && prev=${_tokencert_words[n - 2]}

    # The command, the ca/config subcommand, and how many positional arguments precede cur.
    for ((i = 1; i < n - 1; i++)); do
        o=${_tokencert_words[i]}
        if [ -z "$cmd" ]; then
            case $o in -*) continue ;; esac
            cmd=$o
            continue
        fi
        case $o in
        --*=*) ;;
        -*)
            case " ${_tokencert_options[$cmd]-} " in *" $o="*) i=$((i + 1)) ;; esac
            ;;
        *)
            if [ -z "$sub" ] && { [ "$cmd" = ca ] || [ "$cmd" = config ]; }; then sub=$o; else npos=$((npos + 1)); fi
            ;;
        esac
    done

    if [ -z "$cmd" ]; then
        if [[ $cur == -* ]]; then
            _tokencert_offer "$cur" $'--help\n--version'
        else
            _tokencert_offer "$cur" "${_tokencert_commands// /$'\n'}"
        fi
        return 0
    fi
    spec=" ${_tokencert_options[$cmd]-} "

    # The argument of an option.
    if [[ $prev == -* ]] && [[ $spec == *" $prev="* ]]; then
        arg=${spec#*" $prev="}
        arg=${arg%% *}
        [ "$prev" = --ca ] && arg=CA
        case $arg in
        URI) _tokencert_offer "$cur" "$(_tokencert_uris tokens)" ;;
        DIR) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
        FILE | PATH) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        SOURCE) _tokencert_offer "$cur" $'file:\nenv:\nfd:'; compopt -o nospace 2>/dev/null ;;
        CA) _tokencert_offer "$cur" "$(_tokencert_names ca)" ;;
        *'|'*) _tokencert_offer "$cur" "${arg//|/$'\n'}" ;;
        esac
        return 0
    fi
    if [[ $cur == -* ]]; then
        local opts=""
        for o in $spec; do opts+=${o%%=*}$'\n'; done
        _tokencert_offer "$cur" "$opts"
        return 0
    fi

    case $cmd in
    tokens | list | check) ((npos == 0)) && _tokencert_offer "$cur" "$(_tokencert_uris tokens)" ;;
    keygen | enroll) ((npos == 0)) && _tokencert_offer "$cur" "$(_tokencert_uris tokens)" ;;
    import)
        if ((npos == 0)); then
            _tokencert_offer "$cur" "$(_tokencert_uris tokens)"
        else
            compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        fi
        ;;
    csr | export | delete) ((npos == 0)) && _tokencert_offer "$cur" "$(_tokencert_uris list)" ;;
    status | renew | poll | prune | history) ((npos == 0)) && _tokencert_offer "$cur" "$(_tokencert_names credential)" ;;
    config) [ -z "$sub" ] && _tokencert_offer "$cur" check ;;
    ca)
        case $sub in
        "") _tokencert_offer "$cur" $'init\nsubmit\napprove\nreject\nlist\ncert' ;;
        submit) compopt -o filenames 2>/dev/null; ((npos == 0)) && mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
        approve | reject)
            ((npos == 0)) && _tokencert_offer "$cur" "$(_tokencert_ask ca list --json | tr -d ' \n' |
                grep -o '"id":[0-9]*,"subject":"[^"]*","state":"pending"' | sed 's/"id":\([0-9]*\).*/\1/')"
            ;;
        esac
        ;;
    esac
    return 0
}
complete -F _tokencert tokencert
