#!/usr/bin/env bash
# Check a Kaldi data dir (sorted, consistent, audio present; with --feat-dim, features too).
#   utils/validate_data_dir.sh [--no-wav] [--feat-dim D] <data-dir>
# e.g.: utils/validate_data_dir.sh --feat-dim 80 data/train
set -euo pipefail
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-wav) args+=(--check_audio false); shift ;;
    --feat-dim) args+=(--check_feats true --feat_dim "$2"); shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -ne 1 ]; then
  echo "Usage: $0 [--no-wav] [--feat-dim D] <data-dir>" >&2
  echo "e.g.: $0 --feat-dim 80 data/train" >&2
  exit 2
fi
exec python -m rsqasr.bin.validate_data_dir "${args[@]}" "$1"
