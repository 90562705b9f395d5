#!/usr/bin/env bash
# Keep only utterances present in every file of a Kaldi data dir, sort, rebuild spk2utt
# (originals saved in <data-dir>/.backup), then validate.
#   utils/fix_data_dir.sh <data-dir>
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "Usage: $0 <data-dir>" >&2
  echo "e.g.: $0 data/train" >&2
  exit 2
fi
exec python -m rsqasr.bin.validate_data_dir --fix true "$1"
