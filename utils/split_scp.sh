#!/usr/bin/env bash
# Split a Kaldi scp/text file into N parts of nearly equal line count, keeping the order
# (like Kaldi's utils/split_scp.pl without the --utt2spk option).
#   utils/split_scp.sh <in-scp> <out-1> [<out-2> ...]
# e.g.: utils/split_scp.sh data/train/wav.scp split/wav.1.scp split/wav.2.scp
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "Usage: $0 <in-scp> <out-1> [<out-2> ...]" >&2
  echo "e.g.: $0 data/train/wav.scp split/wav.1.scp split/wav.2.scp" >&2
  exit 2
fi
in=$1; shift
[ -f "$in" ] || { echo "$0: no such file $in" >&2; exit 1; }
nout=$#
nlines=$(wc -l < "$in")
if [ "$nlines" -lt "$nout" ]; then
  echo "$0: $in has $nlines lines, cannot split it into $nout non-empty parts" >&2
  exit 1
fi
i=0
for out in "$@"; do
  # part i (0-based) gets lines [i*n/N, (i+1)*n/N)
  from=$(( i * nlines / nout + 1 )); to=$(( (i + 1) * nlines / nout ))
  mkdir -p "$(dirname "$out")"
  sed -n "${from},${to}p" "$in" > "$out.tmp.$$" && mv "$out.tmp.$$" "$out"
  i=$((i + 1))
done
