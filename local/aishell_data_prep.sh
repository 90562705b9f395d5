#!/usr/bin/env bash
# Kaldi data dirs data/{train,dev,test} from an AISHELL-1 tree (the real corpus or the
# synthesized mini one: same layout), then validation of each.
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "Usage: $0 <audio-dir> <transcript-dir> <data-dir>" >&2
  echo "e.g.: $0 db/data_aishell/wav db/data_aishell/transcript data" >&2
  exit 2
fi
audio_dir=$1; transcript_dir=$2; data=$3
transcript="$transcript_dir/aishell_transcript_v0.8.txt"
[ -d "$audio_dir" ] || { echo "$0: no such directory $audio_dir" >&2; exit 1; }
[ -f "$transcript" ] || { echo "$0: no such file $transcript" >&2; exit 1; }

python -m rsqasr.bin.aishell_data_prep --audio_dir "$audio_dir" --transcript "$transcript" --data_dir "$data" \
  || { echo "$0: data preparation failed" >&2; exit 1; }
for x in train dev test; do
  python -m rsqasr.bin.validate_data_dir "$data/$x" || { echo "$0: $data/$x failed validation" >&2; exit 1; }
done
echo "$0: AISHELL data preparation succeeded"
