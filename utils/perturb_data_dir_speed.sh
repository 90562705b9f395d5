#!/usr/bin/env bash
# Speed-perturbed copy of a data dir, as Kaldi's utils/data/perturb_data_dir_speed.sh: every
# utterance and speaker id gets the prefix "sp<factor>-", and wav.scp entries become sox pipes
# ("sox -t wav <in> -t wav - speed <factor> |") that the feature extractor runs.
#   utils/perturb_data_dir_speed.sh <factor> <src-data-dir> <dest-data-dir>
# e.g.: utils/perturb_data_dir_speed.sh 0.9 data/train data/train_sp0.9
set -euo pipefail
if [ $# -ne 3 ]; then
  echo "Usage: $0 <factor> <src-data-dir> <dest-data-dir>" >&2
  echo "e.g.: $0 0.9 data/train data/train_sp0.9" >&2
  exit 2
fi
factor=$1; src=$2; dst=$3
for f in wav.scp text utt2spk; do
  [ -f "$src/$f" ] || { echo "$0: no such file $src/$f" >&2; exit 1; }
done
command -v sox >/dev/null || { echo "$0: sox is needed for speed perturbation (apt-get install sox)" >&2; exit 1; }
p="sp${factor}-"
tmp=$(mktemp -d "${dst%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export LC_ALL=C
awk -v p="$p" '{print p $1, p $2}' "$src/utt2spk" | sort > "$tmp/utt2spk"
awk -v p="$p" '{k=$1; $1=""; print p k $0}' "$src/text" | sort > "$tmp/text"
awk -v p="$p" -v f="$factor" '{
  k=$1; $1=""; sub(/^ /, "");
  if ($0 ~ /\|[ ]*$/) print p k, $0, "sox -t wav - -t wav - speed", f, "|";
  else print p k, "sox -t wav", $0, "-t wav - speed", f, "|";
}' "$src/wav.scp" | sort > "$tmp/wav.scp"
awk '{u[$2] = u[$2] " " $1} END {for (s in u) print s u[s]}' "$tmp/utt2spk" | sort > "$tmp/spk2utt"
rm -rf "$dst"; mkdir -p "$(dirname "$dst")"; mv "$tmp" "$dst"; trap - EXIT
echo "$0: made $dst from $src with speed $factor ($(wc -l < "$dst/utt2spk") utterances)"
