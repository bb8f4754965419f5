#!/usr/bin/env bash
# Kaldi/icefall-style option parsing for recipe scripts. Source it after setting defaults:
#
#   stage=0; stop_stage=100; jobs=2
#   . recipes/parse_options.sh || exit 1
#
# Each "--some-name VALUE" (or "--some-name=VALUE") sets the shell variable some_name, which must
# already exist (so typos are errors). "--help" prints $help_message. Positional arguments are
# left in "$@".
_po_args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --help|-h)
            echo "${help_message:-usage: $0 [--option value ...]}"
            exit 0 ;;
        --*=*)
            _po_name="${1%%=*}"; _po_value="${1#*=}"; shift ;;
        --*)
            if [[ $# -lt 2 ]]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
            _po_name="$1"; _po_value="$2"; shift 2 ;;
        *)
            _po_args+=("$1"); shift; continue ;;
    esac
    _po_var="${_po_name#--}"; _po_var="${_po_var//-/_}"
    if [[ ! "$_po_var" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [[ -z "${!_po_var+set}" ]]; then
        echo "$0: unknown option $_po_name" >&2
        exit 1
    fi
    printf -v "$_po_var" '%s' "$_po_value"
done
set -- "${_po_args[@]+"${_po_args[@]}"}"
unset _po_args _po_name _po_value _po_var
true
