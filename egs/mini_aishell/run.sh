#!/usr/bin/env bash
# mini_aishell: a small Mandarin corpus synthesized here in AISHELL-1's exact layout; the
# quickstart and what CI runs end to end. Same stages as egs/aishell (../TEMPLATE/asr.sh);
# only the corpus stage and conf/asr.conf differ. `./run.sh --help` lists stages and options.
set -euo pipefail
cd "$(dirname "$0")"
exec ../TEMPLATE/asr.sh --config conf/asr.conf "$@"
