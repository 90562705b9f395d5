#!/usr/bin/env bash
# Command-line option parsing for recipe scripts, following the rules of Kaldi's
# utils/parse_options.sh (this is our own implementation of those rules):
#
#   - Source it AFTER declaring every option variable with its default:
#         nj=4            # number of parallel jobs
#         . utils/parse_options.sh
#   - `--foo-bar value` and `--foo_bar value` both set the variable foo_bar.
#   - An option whose variable was not declared is an error (exit 2).
#   - A variable whose default is `true` or `false` only accepts `true` or `false`.
#   - `--config file` (may be repeated) is sourced BEFORE the other options, so the
#     command line overrides the config file.
#   - `--help` / `-h` prints $help_message (if set) and exits 0.
#   - `--foo=bar` is rejected: write `--foo bar`.
#   - Parsing stops at the first argument that does not start with `--`, or after `--`;
#     the remaining arguments are left in "$@".

__po_usage_error() {
  echo "$0: $*" >&2
  [ -n "${help_message:-}" ] && echo "Run '$0 --help' for usage." >&2
  exit 2
}

# Pass 1: config files, left to right.
__po_args=("$@")
for ((__po_i = 0; __po_i < ${#__po_args[@]}; __po_i++)); do
  if [ "${__po_args[__po_i]}" = "--config" ]; then
    __po_cfg="${__po_args[__po_i + 1]:-}"
    [ -z "$__po_cfg" ] && __po_usage_error "option --config needs a file argument"
    [ -r "$__po_cfg" ] || __po_usage_error "cannot read config file '$__po_cfg'"
    # shellcheck disable=SC1090
    . "$__po_cfg" || __po_usage_error "error sourcing config file '$__po_cfg'"
    __po_i=$((__po_i + 1))
  fi
done
unset __po_args __po_i __po_cfg

# Pass 2: every other option.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then printf '%s\n' "$help_message"; else echo "No help found for $0."; fi
      exit 0 ;;
    --)
      shift; break ;;
    --config)
      shift 2 ;;  # already sourced in pass 1
    --*=*)
      __po_usage_error "options are written '--name value', not '$1'" ;;
    --*)
      __po_name="${1#--}"
      __po_name="${__po_name//-/_}"
      case "$__po_name" in
        ''|[0-9]*|*[!A-Za-z0-9_]*) __po_usage_error "invalid option name '$1'" ;;
      esac
      # An option must name a variable declared (set, possibly empty) before this file was sourced.
      eval "__po_isset=\${${__po_name}+set}"
      [ "$__po_isset" = set ] || __po_usage_error "unknown option '$1'"
      [ $# -ge 2 ] || __po_usage_error "option '$1' needs a value"
      eval "__po_old=\${${__po_name}}"
      if [ "$__po_old" = true ] || [ "$__po_old" = false ]; then
        case "$2" in
          true|false) ;;
          *) __po_usage_error "option '$1' takes 'true' or 'false', got '$2'" ;;
        esac
      fi
      printf -v "$__po_name" '%s' "$2"
      shift 2 ;;
    *)
      break ;;
  esac
done
unset __po_name __po_isset __po_old

true  # leave $? = 0 for callers running under set -e
