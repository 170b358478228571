# bash completion for netclient(1). Commands and options are read from netclient's own --help, so
# they follow the program; networks are the ones netclientd has joined ("netclient list").
# shellcheck shell=bash

_netclient_networks() {
        timeout 5 "$1" --no-ask-password list 2>/dev/null </dev/null |
                awk 'NR == 1 { if ($1 != "NETWORK") exit; next } { print $1 }'
}

_netclient() {
        local cur prev words cword
        _init_completion || return

        local prog=${words[0]} help cmd= args=() i w synopsis placeholders=() p
        help=$("$prog" --help 2>/dev/null)
        case $prev in
        -t | --token | --name | --port) return ;; # values nobody can guess
        esac
        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$(printf '%s\n' "$help" | grep -oE -- '(^|[ [|])--?[a-zA-Z][a-z0-9-]*' | grep -oE -- '--?[a-zA-Z][a-z0-9-]*' | sort -u)" -- "$cur"))
                return
        fi
        for ((i = 1; i < cword; i++)); do
                w=${words[i]}
                case $w in
                -t | --token | --name | --port) ((i++)) ;;
                -*) ;;
                *) if [ -z "$cmd" ]; then cmd=$w; else args+=("$w"); fi ;;
                esac
        done
        if [ -z "$cmd" ]; then
                COMPREPLY=($(compgen -W "$(printf '%s\n' "$help" | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit }
                        on && /^  [a-z]/ { print $1 }')" -- "$cur"))
                return
        fi
        # The command's line in the help: "  leave NETWORK   Leave a network ...".
        synopsis=$(printf '%s\n' "$help" | awk -v c="$cmd" '/^Commands:/ { on = 1; next } on && $1 == c {
                for (i = 2; i <= NF && $i ~ /^\[?(-|[A-Z][A-Z0-9-]*([].|]|$)|[a-z-]*\|)/; i++) printf "%s ", $i; exit }')
        while [[ $synopsis =~ \[--?[^][]*\] ]]; do synopsis=${synopsis/"${BASH_REMATCH[0]}"/}; done
        synopsis=$(printf '%s\n' "$synopsis" | sed -E 's/--?[a-z-]+( [A-Z][A-Z0-9.|-]*)?//g')
        for w in $synopsis; do placeholders+=("$w"); done
        i=${#args[@]}
        [ "$i" -lt ${#placeholders[@]} ] || return
        p=${placeholders[i]//[\[\]]/}
        case $p in
        NETWORK) COMPREPLY=($(compgen -W "$(_netclient_networks "$prog")" -- "$cur")) ;;
        *'|'*) COMPREPLY=($(compgen -W "$(printf '%s\n' ${p//|/ } | grep -v '[A-Z]')" -- "$cur")) ;;
        esac
}
complete -F _netclient netclient
