#!/usr/bin/env bash
# AISHELL-1 (OpenSLR 33): 178 h of Mandarin read speech from 400 speakers.
# local/data.sh downloads the corpus into db/ (or uses --local_data_opts "--aishell_root DIR"),
# then this runs the stages shared by
# every recipe (../TEMPLATE/asr.sh) with the settings in conf/asr.conf. Any option of asr.sh
# can be given here and overrides the config; `./run.sh --help` lists stages and options.
set -euo pipefail
cd "$(dirname "$0")"
exec ../TEMPLATE/asr.sh --config conf/asr.conf "$@"
