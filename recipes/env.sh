# Sourced by every recipe script and egs/<corpus>/run.sh: strict mode, the `asr` command, logging
# and the "is this output newer than its inputs" check that lets every stage skip work done.

set -euo pipefail

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASR_ROOT="$(dirname "$RECIPES_DIR")"

# `asr`: the one on PATH, else the repository's virtual environment, else `python3 -m asr`.
if ! command -v asr > /dev/null 2>&1; then
  if [ -x "$ASR_ROOT/.venv/bin/asr" ]; then
    asr() { "$ASR_ROOT/.venv/bin/asr" "$@"; }
  else
    asr() { PYTHONPATH="$ASR_ROOT${PYTHONPATH:+:$PYTHONPATH}" python3 -m asr "$@"; }
  fi
fi

# log MESSAGE...: a time-stamped line on stderr.
log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') ($(basename "$0")) $*" >&2
}

# up_to_date OUT INPUT...: OUT exists and no existing INPUT is newer than it.
up_to_date() {
  local out="$1" input
  shift
  [ -e "$out" ] || return 1
  for input in "$@"; do
    if [ -e "$input" ] && [ "$input" -nt "$out" ]; then
      return 1
    fi
  done
  return 0
}
