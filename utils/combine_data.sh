#!/usr/bin/env bash
# Combine data dirs (wav.scp, text, utt2spk; spk2utt rebuilt) into one, as Kaldi's
# utils/combine_data.sh; utterance ids must be unique across the sources.
#   utils/combine_data.sh <dest-data-dir> <src-data-dir-1> [<src-data-dir-2> ...]
# e.g.: utils/combine_data.sh data/train_sp data/train data/train_sp0.9 data/train_sp1.1
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "Usage: $0 <dest-data-dir> <src-data-dir-1> [<src-data-dir-2> ...]" >&2
  echo "e.g.: $0 data/train_sp data/train data/train_sp0.9 data/train_sp1.1" >&2
  exit 2
fi
dst=$1; shift
export LC_ALL=C
tmp=$(mktemp -d "${dst%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for f in wav.scp text utt2spk; do
  for s in "$@"; do
    [ -f "$s/$f" ] || { echo "$0: no such file $s/$f" >&2; exit 1; }
    cat "$s/$f"
  done | sort > "$tmp/$f"
  dups=$(cut -d' ' -f1 "$tmp/$f" | uniq -d | head -n 3)
  [ -z "$dups" ] || { echo "$0: duplicate utterance ids in $f across sources, e.g.: $dups" >&2; exit 1; }
done
awk '{u[$2] = u[$2] " " $1} END {for (s in u) print s u[s]}' "$tmp/utt2spk" | sort > "$tmp/spk2utt"
rm -rf "$dst"; mkdir -p "$(dirname "$dst")"; mv "$tmp" "$dst"; trap - EXIT
echo "$0: combined $# data dirs into $dst ($(wc -l < "$dst/utt2spk") utterances)"
