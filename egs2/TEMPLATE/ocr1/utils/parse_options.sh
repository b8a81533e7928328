#!/usr/bin/env bash
# Source this after setting defaults: every "--name value" (or "--name=value") on the command line
# sets the shell variable `name` (dashes read as underscores), which must already exist, so a
# misspelt option is an error instead of being ignored. Arguments after the options stay in "$@".
# --help prints the script's leading comment block ("help_message" when the script sets it).
while [ $# -gt 0 ]; do
    case "$1" in
    --help|-h)
        if [ -n "${help_message:-}" ]; then echo "${help_message}"; else sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; fi
        exit 0 ;;
    --*=*)
        _name=${1%%=*}; _value=${1#*=}; shift ;;
    --*)
        [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
        _name=$1; _value=$2; shift 2 ;;
    *) break ;;
    esac
    _name=${_name#--}; _name=${_name//-/_}
    if ! declare -p "${_name}" >/dev/null 2>&1; then
        echo "$0: unknown option --${_name}" >&2; exit 1
    fi
    case "$(declare -p "${_name}")" in
        "declare -a"*) read -r -a "${_name?}" <<< "${_value}" ;;
        *) printf -v "${_name}" '%s' "${_value}" ;;
    esac
done
unset _name _value
true
