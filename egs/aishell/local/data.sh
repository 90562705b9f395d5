#!/usr/bin/env bash
# AISHELL-1 (OpenSLR 33) for ../TEMPLATE/asr.sh, run from the recipe dir:
#   stage 0: download and unpack data_aishell/ and resource_aishell/ into --db_dir (resumable,
#            size and md5 checked), or check an existing tree given as --aishell_root;
#   stage 1: Kaldi data dirs data/{train,dev,test}, validated.
# asr.sh calls it once per stage with --nj; its own options come from asr.sh --local_data_opts.
set -euo pipefail

stage=0           # first stage (0: corpus, 1: data dirs)
stop_stage=1      # last stage
nj=4              # parallel jobs (not used here; asr.sh passes it to every recipe's data.sh)
db_dir=db         # download and unpack here
aishell_root=     # an existing AISHELL-1 tree (with data_aishell/ inside): nothing is downloaded
aishell_url=https://www.openslr.org/resources/33  # OpenSLR resource 33 (or a mirror with the same files)

help_message="Usage: $0 [options]
e.g.: $0 --stage 0 --stop_stage 1 --aishell_root /data/aishell
Options:
  --stage N            0: corpus, 1: data dirs [$stage]
  --stop_stage N       [$stop_stage]
  --nj N               [$nj]
  --db_dir DIR         download dir [$db_dir]
  --aishell_root DIR   existing AISHELL-1 tree, skips the download [$aishell_root]
  --aishell_url URL    [$aishell_url]"

. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$help_message" >&2
  exit 2
fi
root=${aishell_root:-$db_dir}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  if [ -n "$aishell_root" ]; then
    for d in "$aishell_root/data_aishell/wav" "$aishell_root/data_aishell/transcript"; do
      [ -d "$d" ] || { echo "$0: --aishell_root $aishell_root has no $d" >&2; exit 1; }
    done
    echo "$0: using the AISHELL-1 tree in $aishell_root; nothing to download"
  else
    local/download_and_untar.sh "$db_dir" "$aishell_url" data_aishell
    local/download_and_untar.sh "$db_dir" "$aishell_url" resource_aishell
  fi
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  local/aishell_data_prep.sh "$root/data_aishell/wav" "$root/data_aishell/transcript" data
fi
echo "$0: succeeded (stages $stage..$stop_stage, AISHELL-1 in $root)"
