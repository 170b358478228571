# bash completion for nmctl(1). Commands, verbs and options are read from nmctl's own --help, so
# they follow the program; networks, hosts, nodes, enrollment keys, users, external clients, ACL
# rules and nameservers' domains are asked from the server, with the connection options already on the command line (at
# most 5 s; nothing when it cannot be reached or the user is not logged in).
# shellcheck shell=bash

# The arguments a placeholder of a synopsis stands for ("NETWORK", "NODE-ID", "allow|deny"), in the
# command GROUP; prints one candidate a line.
_nmctl_candidates() { # PLACEHOLDER GROUP VERB NETWORK
        local p=${1//[\[\]]/} group=$2 verb=$3 net=$4
        p=${p%...}
        case $p in
        NETWORK | NET) _nmctl_list network list ;;
        HOST) _nmctl_list host list 1 2 ;;
        NODE-ID | RELAYED-ID | GATEWAY-ID | GW) _nmctl_list node list ;;
        RULE-ID) [ -n "$net" ] && _nmctl_list acl show "$net" ;;
        DOMAIN)
                [ "$group" = nameserver ] && [ "$verb" != add ] && [ -n "$net" ] && _nmctl_list nameserver list "$net" ;;
        NAME)
                [ "$group" = network ] && [ "$verb" != create ] && _nmctl_list network list ;;
        USERNAME)
                [ "$group" = user ] && [ "$verb" != create ] && _nmctl_list user list ;;
        ID)
                case $group in
                key | keys) _nmctl_list key list ;;
                node | nodes) _nmctl_list node list ;;
                extclient | extclients)
                        local n
                        for n in $(_nmctl_list network list); do _nmctl_list extclient list "$n"; done
                        ;;
                esac
                ;;
        FILE*) compgen -f -- "$cur" ;;
        *'|'*) printf '%s\n' ${p//|/ } | grep -v '[A-Z]' ;;
        esac
        return 0
}

# _nmctl_list ARGS... [COLUMN...]: the first column (or the given ones) of the table nmctl prints,
# from the line after its header (a line of upper-case words; "acl show" prints lines before it)
# to the next empty line; nothing when there is no table ("No networks.").
_nmctl_list() {
        local args=() cols=()
        while [ $# -gt 0 ]; do
                case $1 in
                [0-9]) cols+=("$1") ;;
                *) args+=("$1") ;;
                esac
                shift
        done
        [ ${#cols[@]} -gt 0 ] || cols=(1)
        timeout 5 "$_nmctl_prog" "${_nmctl_conn[@]}" "${args[@]}" 2>/dev/null </dev/null |
                awk -v cols="${cols[*]}" '!on { on = $1 ~ /^[A-Z][A-Z-]*$/ && $2 ~ /^[A-Z][A-Z0-9-]*$/; next } /^$/ { exit }
                        { n = split(cols, c, " "); for (i = 1; i <= n; i++) if ($c[i] != "") print $c[i] }'
}

# The sub-commands of a command (its --help lists "  nmctl ... WORD VERB ..."), or of nmctl itself.
_nmctl_verbs() { # PATH...
        if [ $# = 0 ]; then
                "$_nmctl_prog" --help 2>/dev/null | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit }
                        on && /^  [a-z]/ && !seen[$1]++ { print $1 }'
        else
                "$_nmctl_prog" "$@" --help 2>/dev/null |
                        awk -v last="${*: -1}" '$1 == "nmctl" { for (i = 2; i < NF; i++) if ($i == last) { print $(i + 1); break } }' |
                        grep -v '^[A-Z[-]' | sort -u
        fi
}

_nmctl() {
        local cur prev words cword
        _init_completion || return

        _nmctl_prog=${words[0]}
        _nmctl_conn=()
        local global_help global_opts opts_with_arg path=() args=() i w help
        global_help=$("$_nmctl_prog" --help 2>/dev/null)
        # the options every command takes: the "Options" part of nmctl --help
        global_opts=$(printf '%s\n' "$global_help" | sed -n '/^Options/,/^$/p')
        # options that take a value: "--opt WORD" in any help on the way
        opts_with_arg=" $(printf '%s\n' "$global_help" | grep -oE -- '--[a-z-]+ [A-Z][A-Z.|-]*' | cut -d' ' -f1 | tr '\n' ' ')"

        # Walk the words before the cursor: connection options, the command path, its arguments.
        local verbs
        verbs=$(_nmctl_verbs)
        for ((i = 1; i < cword; i++)); do
                w=${words[i]}
                case $w in
                --server | --master-key | --pin | --ca-file)
                        _nmctl_conn+=("$w" "${words[i + 1]}")
                        ((i++))
                        continue
                        ;;
                --insecure) _nmctl_conn+=("$w"); continue ;;
                -*)
                        [[ $opts_with_arg == *" $w "* ]] && ((i++))
                        continue
                        ;;
                esac
                if [ ${#args[@]} = 0 ] && printf '%s\n' "$verbs" | grep -qxF -- "$w"; then
                        path+=("$w")
                        help=$("$_nmctl_prog" "${path[@]}" --help 2>/dev/null)
                        opts_with_arg+=" $(printf '%s\n' "$help" | grep -oE -- '--[a-z-]+ [A-Z][A-Z.|-]*' | cut -d' ' -f1 | tr '\n' ' ')"
                        verbs=$(_nmctl_verbs "${path[@]}")
                else
                        args+=("$w")
                fi
        done
        [ ${#path[@]} -gt 0 ] && help=$("$_nmctl_prog" "${path[@]}" --help 2>/dev/null) || help=$global_help

        # The value of an option.
        case $prev in
        --network) COMPREPLY=($(compgen -W "$(_nmctl_list network list)" -- "$cur")); return ;;
        --gateway | --deny) COMPREPLY=($(compgen -W "$(_nmctl_list node list)" -- "$cur")); return ;;
        --role) COMPREPLY=($(compgen -W "admin user" -- "$cur")); return ;;
        --ca-file | --conf | --qr | --output) _filedir; return ;;
        --endpoint | --listen-port | --keepalive | --mtu)
                # host set: "default" puts the setting back; the rest is a value nobody can guess
                [ "${path[*]}" = "host set" ] && COMPREPLY=($(compgen -W default -- "$cur"))
                return
                ;;
        esac
        if [[ $prev == -* && $opts_with_arg == *" $prev "* ]]; then
                return # a value nobody can guess (URL, KEY, PIN, CIDR...)
        fi

        if [[ $cur == -* ]]; then
                local opts verb_help=
                [ ${#path[@]} = 0 ] || verb_help=$help
                opts=$(printf '%s\n%s\n' "$global_opts" "$verb_help" | grep -oE -- '(^|[ [|])--?[a-zA-Z][a-z0-9-]*' |
                        grep -oE -- '--?[a-zA-Z][a-z0-9-]*' | sort -u)
                [ ${#path[@]} = 0 ] || opts=$(printf '%s\n' "$opts" | grep -vx -- --version) # nmctl --version only
                COMPREPLY=($(compgen -W "$opts" -- "$cur"))
                return
        fi
        if [ ${#args[@]} = 0 ] && [ -n "$verbs" ]; then
                COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
                return
        fi
        [ ${#path[@]} -gt 0 ] || return

        # A positional argument: its placeholder in the synopsis (the first line of the help), less
        # the options and their values.
        local synopsis placeholders=() p net=
        synopsis=$(printf '%s\n' "$help" | sed -n '1{s/^nmctl //;p}')
        for w in "${path[@]}"; do synopsis=${synopsis#"$w "}; done
        [[ $synopsis == "${path[-1]}" ]] && synopsis=
        while [[ $synopsis =~ \[--[^][]*\] ]]; do synopsis=${synopsis/"${BASH_REMATCH[0]}"/}; done
        synopsis=$(printf '%s\n' "$synopsis" | sed -E 's/--[a-z-]+( [A-Z][A-Z0-9.|-]*)?//g')
        for w in $synopsis; do
                [[ $w == '[OPTIONS]' || $w == '|' || $w == '...' ]] && continue
                placeholders+=("$w")
        done
        [ ${#placeholders[@]} -gt 0 ] || return
        for i in "${!placeholders[@]}"; do
                [[ ${placeholders[i]//[\[\]]/} == NETWORK ]] && [ -n "${args[i]:-}" ] && net=${args[i]}
        done
        i=${#args[@]}
        if [ "$i" -ge ${#placeholders[@]} ]; then
                p=${placeholders[-1]}
                [[ $p == *... || $p == *...\] ]] || return
        else
                p=${placeholders[i]}
        fi
        COMPREPLY=($(compgen -W "$(_nmctl_candidates "$p" "${path[0]}" "${path[1]:-}" "$net")" -- "$cur"))
}
complete -F _nmctl nmctl
