#!/usr/bin/env bash
# The stages every recipe shares. A recipe's run.sh calls this script from the recipe dir
# with its own defaults; options given to run.sh come last and win.
# Paths below are relative to the recipe dir (data/, fbank/, exp/, conf/).

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}) $*"
}
SECONDS=0

# General
stage=0               # first stage to run
stop_stage=100        # last stage to run
nj=4                  # parallel jobs (feature extraction, synthesis)
force=false           # redo stages that are marked done in exp/stamps
# Stage 0-1: the recipe's corpus, behind its local/data.sh (this template knows no corpus)
local_data_opts=      # options for local/data.sh (e.g. "--aishell_root DIR", "--scale 0.02"; see its --help)
# Stage 1-2: data and features
train_set=train       # training data dir name under data/
valid_set=dev         # validation data dir
test_sets="dev test"  # data dirs to decode
speed_perturb=false   # add 0.9x and 1.1x speed-perturbed copies of the training set
num_mel_bins=80       # fbank dimension
token_type=char       # char | bpe
nbpe=500              # sentencepiece vocabulary size with --token_type bpe
# Stage 3-4: training and decoding
train_config=         # conf/train_<model>.yaml; the experiment dir is exp/<its name>
pretrain_set=         # optional data dir to pretrain on first (then fine-tune on the train set)
ngpu=0                # GPUs per training process (0: CPU)
nproc=1               # training processes (> 1: DDP through torchrun)
decode_model=valid.cer.ave.pth  # model file in the experiment dir to decode with
decode_mode=beam      # greedy | beam (CTC prefix beam search)
beam=10               # beam size
# Stage 5-6: quantization
calib_utts=200        # utterances of the training set for KL calibration (PTQ)
rsq_config=conf/tuning/rsq.yaml  # RSQ fine-tuning settings (optim/scheduler/train/rsq sections)
rsq_betas="0 0.25"    # noise-loss weights to fine-tune with (0: the paper's RSQ-dagger)
decode_target=armv7   # stage 8: rsq-decode build to decode with (host | armv7 | aarch64; qemu when not on ARM)
engine_variants=all   # stages 7-8: all, or some of: fp32 ptq_int8_gemm ptq_wino rsq_beta<B>
count_armv7_instructions=true  # stage 8: ARMv7 instructions per 600 frames under qemu-arm (seconds per model)
stream_chunks="10 40 100"      # stage 8: rsq-decode --stream cost at these chunk sizes (frames; "" = none)
compare_fakequant=true  # also decode quantized models as fake-quantized PyTorch and count differing hypotheses

help_message=$(cat <<EOM
Usage: $0 [options]

Stages (--stage N --stop_stage M runs N..M; finished stages are skipped unless --force true):
  0  corpus:    local/data.sh --stage 0: the recipe's corpus (download it, find it, or synthesize it)
  1  data:      local/data.sh --stage 1: Kaldi data dirs data/{train,dev,test} (wav.scp, text,
                utt2spk, spk2utt), validated
  2  features:  80-dim fbank (ark/scp, --nj jobs), speed perturbation, global CMVN, token list
  3  pretrain:  FP32 CTC training of --train_config (optionally on --pretrain_set first)
  4  decode:    decode --test_sets with the averaged model, score CER, update RESULTS.md
  5  ptq:       KL-calibrated post-training quantization (INT8 GEMM and INT8 Winograd plans),
                decoded through the bit-exact integer reference
  6  rsq:       RSQ fine-tuning (LSQ, [-42,42] weights, [-63,63] activations, noise loss) for
                each --rsq_betas, decoded through the integer reference
  7  export:    the FP32, PTQ and RSQ models as rsq-decode model files (src_arm/FORMAT.md),
                each checked against the integer reference on data/\$valid_set
  8  engine:    decode --test_sets with rsq-decode (--decode_target host|armv7|aarch64; the ARM
                builds through qemu off ARM), from feats.scp and from wav.scp, score, compare with
                the integer reference, latency at 600 frames (whole and streaming)

Options (template default in brackets; the recipe's conf/asr.conf may set others):
  --stage N            [$stage]
  --stop_stage N       [$stop_stage]
  --nj N               parallel jobs [$nj]
  --force true|false   redo finished stages [$force]
  --local_data_opts S  options for the recipe's local/data.sh (local/data.sh --help) [$local_data_opts]
  --train_set NAME     [$train_set]
  --valid_set NAME     [$valid_set]
  --test_sets "A B"    [$test_sets]
  --speed_perturb B    0.9/1.0/1.1 speed perturbation of the training set [$speed_perturb]
  --num_mel_bins N     [$num_mel_bins]
  --token_type T       char | bpe [$token_type]
  --nbpe N             [$nbpe]
  --train_config FILE  [$train_config]
  --pretrain_set NAME  data dir to pretrain on before the train set [$pretrain_set]
  --ngpu N             GPUs per training process [$ngpu]
  --nproc N            training processes (DDP) [$nproc]
  --decode_model FILE  [$decode_model]
  --decode_mode M      greedy | beam [$decode_mode]
  --beam N             [$beam]
  --calib_utts N       [$calib_utts]
  --rsq_config FILE    [$rsq_config]
  --rsq_betas "B ..."  [$rsq_betas]
  --decode_target T    stage 8: host | armv7 | aarch64 [$decode_target]
  --count_armv7_instructions true|false  [$count_armv7_instructions]
  --stream_chunks "N ..."  stage 8: streaming cost at these chunk sizes in frames [$stream_chunks]
  --engine_variants "V ..."  stages 7-8: all | fp32 ptq_int8_gemm ptq_wino rsq_beta<B> [$engine_variants]
  --compare_fakequant true|false  count quantized hypotheses that differ from fake-quant PyTorch [$compare_fakequant]
  --config FILE        read options from FILE first
EOM
)

. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
set -euo pipefail

if [ $# -ne 0 ]; then
  log "Error: unexpected arguments: $*"; echo "$help_message" >&2; exit 2
fi
is_int() { [[ "$1" =~ ^-?[0-9]+$ ]]; }
is_int "$stage" || { log "Error: --stage must be an integer, not '$stage'"; exit 2; }
is_int "$stop_stage" || { log "Error: --stop_stage must be an integer, not '$stop_stage'"; exit 2; }
[ "$stage" -ge 0 ] && [ "$stage" -le 8 ] || { log "Error: --stage $stage: the stages are 0..8"; exit 2; }
[ "$stop_stage" -ge "$stage" ] || { log "Error: --stop_stage $stop_stage is before --stage $stage: nothing to run"; exit 2; }
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || { log "Error: --nj must be a positive integer, not '$nj'"; exit 2; }
case "$force" in true|false) ;; *) log "Error: --force must be true or false, not '$force'"; exit 2 ;; esac
case "$token_type" in char|bpe) ;; *) log "Error: --token_type must be char or bpe, not '$token_type'"; exit 2 ;; esac

# Killed (TERM, INT, HUP): stop the children (a job launcher, a trainer) with their process trees.
# Long commands run in the background and are waited for, so the trap fires at once.
. utils/kill_tree.sh  # kill_tree <pid>: the process and its descendants
on_signal() {  # on_signal <exit code>
  trap - TERM INT HUP
  local c
  for c in $(pgrep -P $$ 2>/dev/null); do kill_tree "$c"; done
  log "killed; stopped the running stage's processes"
  exit "$1"
}
trap 'on_signal 143' TERM
trap 'on_signal 130' INT
trap 'on_signal 129' HUP

stamps=exp/stamps
mkdir -p "$stamps"
# A stage is skipped when its stamp holds the same settings it would run with now.
stage_is_done() {  # stage_is_done <name> <settings>; --force true removes the stamp first, so a
  # forced run that is killed leaves the stage undone rather than marked with the old settings
  if $force; then rm -f "$stamps/$1.done"; return 1; fi
  [ -f "$stamps/$1.done" ] && [ "$(cat "$stamps/$1.done")" = "$2" ]
}
digest() { cat "$@" | md5sum | cut -c1-12; }  # digest <file...>: what a stamp records of its inputs
mark_done() {  # mark_done <name> <settings>
  printf '%s' "$2" > "$stamps/$1.done.tmp" && mv "$stamps/$1.done.tmp" "$stamps/$1.done"
}
run_stage() {  # run_stage <N>: true if N is within --stage..--stop_stage
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}
invalidate_after() {  # invalidate_after <N>: a stage that ran makes the later stages' stamps stale
  local f n
  for f in "$stamps"/stage*.done; do
    [ -e "$f" ] || continue
    n=${f##*/stage}; n=${n%%_*}
    [ "$n" -gt "$1" ] && rm -f "$f"
  done
  return 0
}

train_data=$train_set
$speed_perturb && train_data=${train_set}_sp
if [ "$token_type" = char ]; then token_dir=data/token_list/char; else token_dir=data/token_list/bpe_unigram$nbpe; fi

# The corpus is the recipe's: local/data.sh (as in ESPnet recipes) takes --stage/--stop_stage (0:
# fetch, find or synthesize the corpus; 1: write data/{train,dev,test}), --nj and its own options
# (--local_data_opts). Its stamp holds those options and a digest of the recipe's local/ scripts,
# so a changed corpus script (e.g. a new corpus format) runs the stages again.
[ -x local/data.sh ] || [ "$stop_stage" -lt 0 ] || [ "$stage" -gt 1 ] || \
  { log "Error: $(pwd)/local/data.sh is missing or not executable (every recipe has one: see README.md)"; exit 1; }

if run_stage 0; then
  settings="opts=$local_data_opts local=$(digest local/*.sh)"
  if stage_is_done stage0_corpus "$settings"; then
    log "Stage 0: corpus already done ($stamps/stage0_corpus.done); skipping"
  else
    log "Stage 0: corpus (local/data.sh --stage 0 $local_data_opts)"
    # shellcheck disable=SC2086
    local/data.sh --stage 0 --stop_stage 0 --nj "$nj" $local_data_opts
    mark_done stage0_corpus "$settings"; invalidate_after 0
  fi
fi

if run_stage 1; then
  settings="opts=$local_data_opts local=$(digest local/*.sh)"
  if stage_is_done stage1_data "$settings"; then
    log "Stage 1: data already done; skipping"
  else
    log "Stage 1: data preparation (local/data.sh --stage 1 $local_data_opts)"
    # shellcheck disable=SC2086
    local/data.sh --stage 1 --stop_stage 1 --nj "$nj" $local_data_opts
    mark_done stage1_data "$settings"; invalidate_after 1
  fi
fi

make_fbank() {  # make_fbank <data-set>
  local set=$1 dir=data/$1 n
  n=$(wc -l < "$dir/wav.scp"); [ "$n" -gt "$nj" ] && n=$nj
  local split=$dir/split$n
  rm -rf "$split"; mkdir -p "$split" "fbank/$set/log"
  # shellcheck disable=SC2046
  utils/split_scp.sh "$dir/wav.scp" $(for i in $(seq "$n"); do echo "$split/wav.$i.scp"; done)
  log "fbank for $set: $(wc -l < "$dir/wav.scp") utterances in $n jobs (logs in fbank/$set/log)"
  ${feats_cmd} --max-jobs-run "$nj" JOB=1:"$n" "fbank/$set/log/make_fbank.JOB.log" \
    python -m rsqasr.bin.compute_fbank --wav_scp "$split/wav.JOB.scp" --num_mel_bins "$num_mel_bins" \
      --out_ark "fbank/$set/raw_fbank.JOB.ark" --out_scp "fbank/$set/raw_fbank.JOB.scp" \
      --out_num_frames "fbank/$set/utt2num_frames.JOB"
  for i in $(seq "$n"); do cat "fbank/$set/raw_fbank.$i.scp"; done | sort > "$dir/feats.scp.tmp"
  for i in $(seq "$n"); do cat "fbank/$set/utt2num_frames.$i"; done | sort > "$dir/utt2num_frames.tmp"
  mv "$dir/feats.scp.tmp" "$dir/feats.scp"; mv "$dir/utt2num_frames.tmp" "$dir/utt2num_frames"
  rm -rf "$split"
  utils/validate_data_dir.sh --feat-dim "$num_mel_bins" "$dir"
}

if run_stage 2; then
  settings="data=$local_data_opts bins=$num_mel_bins sp=$speed_perturb sets=$train_set,$valid_set,$test_sets tokens=$token_type/$nbpe"
  if stage_is_done stage2_features "$settings"; then
    log "Stage 2: features already done; skipping"
  else
    log "Stage 2: features, CMVN and tokens"
    others=""; for s in $valid_set $test_sets; do [ "$s" = "$train_set" ] || others+=" data/$s"; done
    python -m rsqasr.bin.validate_data_dir --check_audio false --disjoint_from "$others" "data/$train_set"
    if $speed_perturb; then
      for f in 0.9 1.1; do utils/perturb_data_dir_speed.sh $f "data/$train_set" "data/${train_set}_sp$f"; done
      utils/combine_data.sh "data/$train_data" "data/$train_set" "data/${train_set}_sp0.9" "data/${train_set}_sp1.1"
      rm -rf "data/${train_set}_sp0.9" "data/${train_set}_sp1.1"
    fi
    for set in $(echo "$train_data $valid_set $test_sets" | tr ' ' '\n' | awk 'NF && !seen[$0]++'); do
      make_fbank "$set"
    done
    python -m rsqasr.bin.compute_cmvn --feats_scp "data/$train_data/feats.scp" --out "data/$train_data/cmvn.ark"
    if [ "$token_type" = char ]; then
      python -m rsqasr.bin.make_token_list --text "data/$train_set/text" --token_type char --out "$token_dir/tokens.txt"
    else
      python -m rsqasr.bin.make_token_list --text "data/$train_set/text" --token_type bpe --nbpe "$nbpe" \
        --bpe_model_prefix "$token_dir/bpe" --out "$token_dir/tokens.txt"
    fi
    mark_done stage2_features "$settings"; invalidate_after 2
  fi
fi

[ -n "$train_config" ] || [ "$stop_stage" -lt 3 ] || \
  { log "Error: stages 3 and later need --train_config conf/train_<model>.yaml"; exit 2; }
exp_name=$(basename "${train_config%.*}")
exp=exp/$exp_name

train_model() {  # train_model <data-set> <exp-dir> [extra train options]
  local set=$1 dir=$2; shift 2
  local launcher=(python -m rsqasr.bin.train)
  [ "$nproc" -gt 1 ] && launcher=(python -m torch.distributed.run --standalone --nproc_per_node "$nproc" -m rsqasr.bin.train)
  mkdir -p "$dir/log"
  log "training $dir on data/$set (full log: $dir/train.log)"
  # the trainer's one line per epoch (loss, valid CER, time, ETA) is echoed to the console as it
  # appears, by a follower that ends with the training (or with this shell)
  local lines; lines=$( [ -f "$dir/train.log" ] && wc -l < "$dir/train.log" || echo 0)
  (tail -n +"$((lines + 1))" -F --pid=$$ "$dir/train.log" 2>/dev/null |
     grep --line-buffered -E "done in|resumed from|ERROR" | sed -u 's/^/  /') &
  local follower=$! rc=0
  ${train_cmd} "$dir/log/train.launch.log" "${launcher[@]}" --config "$train_config" --ngpu "$ngpu" \
    --train_dir "data/$set" --valid_dir "data/$valid_set" --token_list "$token_dir/tokens.txt" \
    --token_type "$token_type" $( [ "$token_type" = bpe ] && echo --bpe_model "$token_dir/bpe.model" ) \
    --cmvn "data/$train_data/cmvn.ark" --exp_dir "$dir" --resume "$( $force && echo false || echo true)" "$@" &
  wait $! || rc=$?
  sleep 1.2   # tail -F polls once a second: let it print the last epoch
  pkill -P "$follower" 2>/dev/null || true
  wait "$follower" 2>/dev/null || true
  [ "$rc" -eq 0 ] || { log "Error: training $dir failed (exit $rc); see $dir/log/train.launch.log"; exit 1; }
  tail -n 1 "$dir/train.log"
}

if run_stage 3; then
  settings="config=$(digest "$train_config") sets=$pretrain_set,$train_data tokens=$token_type/$nbpe"
  if stage_is_done "stage3_pretrain_$exp_name" "$settings"; then
    log "Stage 3: $exp already trained; skipping"
  else
    log "Stage 3: pretrain $train_config -> $exp"
    if [ -n "$pretrain_set" ]; then
      train_model "$pretrain_set" "${exp}_pretrain"
      train_model "$train_data" "$exp" --init_checkpoint "${exp}_pretrain/valid.cer.ave.pth"
    else
      train_model "$train_data" "$exp"
    fi
    mark_done "stage3_pretrain_$exp_name" "$settings"; invalidate_after 3
  fi
fi

split_run() {  # split_run <set> <dir> <command...>: the command (JOB in its arguments) reads
  # <dir>/split/feats.JOB.scp and writes <dir>/split/hyp.JOB.txt; --nj jobs, merged into <dir>/hyp.txt.
  # With split_scp=wav.scp in the environment it splits data/<set>/wav.scp into <dir>/split/wav.JOB.scp.
  local set=$1 dir=$2; shift 2
  local n i scp=${split_scp:-feats.scp}
  n=$(wc -l < "data/$set/$scp"); [ "$n" -gt "$nj" ] && n=$nj
  rm -rf "$dir/split"; mkdir -p "$dir/split" "$dir/log"
  # shellcheck disable=SC2046
  utils/split_scp.sh "data/$set/$scp" $(for i in $(seq "$n"); do echo "$dir/split/${scp%.scp}.$i.scp"; done)
  ${decode_cmd} --max-jobs-run "$nj" JOB=1:"$n" "$dir/log/decode.JOB.log" "$@"
  for i in $(seq "$n"); do cat "$dir/split/hyp.$i.txt"; done | sort > "$dir/hyp.txt"
  rm -rf "$dir/split"
}

decode_split() {  # decode_split <model-exp-dir> <set> <dir> [decode options]: Python decode into <dir>/hyp.txt
  local mexp=$1 set=$2 dir=$3; shift 3
  split_run "$set" "$dir" python -m rsqasr.bin.decode --exp_dir "$mexp" --model "$decode_model" \
    --feats_scp "$dir/split/feats.JOB.scp" --out "$dir/split/hyp.JOB.txt" --mode "$decode_mode" --beam "$beam" "$@"
}

rsq_method() {  # rsq_method <beta>: the Table 2 method name of an RSQ run
  if [ "$(python -c "print(float('$1') == 0)")" = True ]; then echo "RSQ† (beta=0)"; else echo RSQ; fi
}

write_decode_info() {  # write_decode_info <dir> <set> <tag> <decoding> <model file> <quantization> <method>
  python - "$1/decode_info.json" "$2" "$3" "$4" "$5" "$exp_name" "$6" "$7" <<'PY'
import json, sys
keys = ["set", "tag", "decode", "model_file", "base", "quant", "method"]
json.dump(dict(zip(keys, sys.argv[2:])), open(sys.argv[1], "w"), ensure_ascii=False)
PY
}

decode_sets() {  # decode_sets <model-exp-dir> <out-dir> <quantization> <method> [rsqasr.bin.decode options]
  local mexp=$1 out=$2 quant=$3 method=$4; shift 4
  local tag set dir
  tag=$decode_mode; [ "$decode_mode" = beam ] && tag=$decode_mode$beam
  for set in $test_sets; do
    dir=$out/decode_${set}_$tag
    decode_split "$mexp" "$set" "$dir" "$@"
    python -m rsqasr.bin.score --ref "data/$set/text" --hyp "$dir/hyp.txt" --dir "$dir"
    write_decode_info "$dir" "$set" "$tag" "$( [ "$decode_mode" = beam ] && echo "beam $beam" || echo "$decode_mode")" \
      "$mexp/$decode_model" "$quant" "$method"
    log "$out $set: $(sed -n 3p "$dir/result.txt")"
    if [ "$quant" != FP32 ] && [ "$compare_fakequant" = true ]; then
      # the same model as fake-quantized PyTorch: the integer reference should decode the same strings
      decode_split "$mexp" "$set" "$dir/fakequant" "$@" --engine torch
      python -m rsqasr.bin.compare_hyps --ref "data/$set/text" --a "$dir/hyp.txt" --b "$dir/fakequant/hyp.txt" \
        --out "$dir/engine_agreement.json"
    fi
  done
  python -m rsqasr.bin.make_results --exp_root exp --results RESULTS.md
}

# Stages 4-8 decode, quantize, export and measure: their stamps record the digests of the files
# they read and the options that change what they write, so a re-run skips only identical work.
decoding="sets=$test_sets mode=$decode_mode beam=$beam fakequant=$compare_fakequant"

if run_stage 4; then
  [ -f "$exp/$decode_model" ] || { log "Error: $exp/$decode_model not found; run stage 3 first"; exit 1; }
  settings="model=$(digest "$exp/$decode_model") $decoding"
  if stage_is_done "stage4_decode_$exp_name" "$settings"; then
    log "Stage 4: $exp already decoded; skipping"
  else
    log "Stage 4: decode $test_sets with $exp/$decode_model ($decode_mode)"
    decode_sets "$exp" "$exp" FP32 -
    mark_done "stage4_decode_$exp_name" "$settings"
  fi
fi

if run_stage 5; then
  [ -f "$exp/$decode_model" ] || { log "Error: $exp/$decode_model not found; run stage 3 first"; exit 1; }
  for plan in int8_gemm wino; do
    qdir=$exp/ptq_$plan
    settings="model=$(digest "$exp/$decode_model") calib=$train_data/$calib_utts $decoding"
    if stage_is_done "stage5_ptq_${exp_name}_$plan" "$settings"; then
      log "Stage 5: $qdir already quantized and decoded; skipping"
      continue
    fi
    log "Stage 5: post-training quantization of $exp/$decode_model, $plan plan (KL calibration on $calib_utts utterances)"
    python -m rsqasr.bin.quantize --exp_dir "$exp" --model "$decode_model" --plan "$plan" \
      --calib_dir "data/$train_data" --calib_utts "$calib_utts" --out "$qdir/quant.json" > "$qdir.log" 2>&1 \
      || { tail -n 20 "$qdir.log"; log "Error: quantization failed, see $qdir.log"; exit 1; }
    if [ "$plan" = wino ]; then name="INT8 Wino"; else name="INT8 GEMM"; fi
    decode_sets "$exp" "$qdir" "$name" PTQ --quant "$qdir/quant.json"
    mark_done "stage5_ptq_${exp_name}_$plan" "$settings"
  done
fi

if run_stage 6; then
  [ -f "$exp/$decode_model" ] || { log "Error: $exp/$decode_model not found; run stage 3 first"; exit 1; }
  [ -f "$rsq_config" ] || { log "Error: --rsq_config $rsq_config not found"; exit 1; }
  for beta in $rsq_betas; do
    rexp=${exp}_rsq_beta$beta
    settings="config=$(digest "$train_config" "$rsq_config") init=$(digest "$exp/$decode_model")"
    if stage_is_done "stage6_rsq_${exp_name}_$beta" "$settings"; then
      log "Stage 6: $rexp already fine-tuned; skipping the training"
    else
      log "Stage 6: RSQ fine-tuning of $exp/$decode_model with beta=$beta -> $rexp"
      train_model "$train_data" "$rexp" --rsq true --finetune_config "$rsq_config" --rsq_beta "$beta" \
        --init_checkpoint "$exp/$decode_model"
      mark_done "stage6_rsq_${exp_name}_$beta" "$settings"
    fi
    method=$(rsq_method "$beta")
    decode_sets "$rexp" "$rexp" "INT8 Wino" "$method"
  done
fi

model_variants() {  # lines "<name>|<model exp>|<exported file>|<decode dir root>|<quantization>|<method>|<export args>"
  local beta rexp method
  {
    echo "fp32|$exp|$exp/export/fp32.rsq|$exp|FP32|-|--quant none"
    echo "ptq_int8_gemm|$exp|$exp/ptq_int8_gemm/export/model.rsq|$exp/ptq_int8_gemm|INT8 GEMM|PTQ|--quant int8_gemm --quant_json $exp/ptq_int8_gemm/quant.json"
    echo "ptq_wino|$exp|$exp/ptq_wino/export/model.rsq|$exp/ptq_wino|INT8 Wino|PTQ|--quant wino --quant_json $exp/ptq_wino/quant.json"
    for beta in $rsq_betas; do
      rexp=${exp}_rsq_beta$beta
      method=$(rsq_method "$beta")
      echo "rsq_beta$beta|$rexp|$rexp/export/model.rsq|$rexp|INT8 Wino|$method|--quant wino"
    done
  } | while IFS='|' read -r name rest; do
    case " $engine_variants " in *" all "*|*" $name "*) echo "$name|$rest" ;; esac
  done
}

if run_stage 7; then
  log "Stage 7: export for rsq-decode (each file checked against the integer reference on data/$valid_set)"
  while IFS='|' read -r name mexp file _ quant method eargs; do
    qjson=${file%/export/model.rsq}/quant.json
    if [ ! -f "$mexp/$decode_model" ] || { [ "$method" = PTQ ] && [ ! -f "$qjson" ]; }; then
      log "Stage 7: $quant $method: no trained/quantized model in $mexp (run stages 3-6); skipped"
      continue
    fi
    settings="model=$(digest "$mexp/$decode_model" $( [ "$method" = PTQ ] && echo "$qjson" )) args=$eargs check=$valid_set"
    if [ -f "$file" ] && stage_is_done "stage7_export_${exp_name}_$name" "$settings"; then
      log "Stage 7: $file already exported; skipping"
      continue
    fi
    mkdir -p "$(dirname "$file")"
    # shellcheck disable=SC2086
    python -m rsqasr.bin.export --exp_dir "$mexp" --model "$decode_model" $eargs \
      --check_data_dir "data/$valid_set" --out "$file" > "${file%.rsq}.log" 2>&1 \
      || { tail -n 20 "${file%.rsq}.log"; log "Error: export of $quant $method failed, see ${file%.rsq}.log"; exit 1; }
    log "$quant $method -> $file"
    mark_done "stage7_export_${exp_name}_$name" "$settings"
  done < <(model_variants)
fi

if run_stage 8; then
  case $decode_target in
    host) bin=rsq-decode ;;
    armv7|aarch64) bin=rsq-decode-$decode_target ;;
    *) log "Error: --decode_target $decode_target (host, armv7 or aarch64)"; exit 1 ;;
  esac
  command -v "$bin" > /dev/null || { log "Error: $bin not on PATH (make install builds it; . ./path.sh)"; exit 1; }
  log "Stage 8: decode $test_sets with $bin (CTC greedy), latency at 600 frames"
  while IFS='|' read -r name mexp file out quant method _; do
    [ -f "$file" ] || { log "Stage 8: no $file (run stage 7); skipped"; continue; }
    settings="model=$(digest "$file") target=$decode_target sets=$test_sets count=$count_armv7_instructions stream=$stream_chunks"
    if stage_is_done "stage8_engine_${exp_name}_${name}_$decode_target" "$settings"; then
      log "Stage 8: $file already decoded and measured with $bin; skipping"
      continue
    fi
    for set in $test_sets; do
      dir=$out/decode_${set}_rsqdecode_$decode_target
      split_run "$set" "$dir" "$bin" --threads 1 "$file" "$dir/split/feats.JOB.scp" "$dir/split/hyp.JOB.txt"
      python -m rsqasr.bin.score --ref "data/$set/text" --hyp "$dir/hyp.txt" --dir "$dir"
      write_decode_info "$dir" "$set" "rsqdecode_$decode_target" "greedy, rsq-decode $decode_target" \
        "$mexp/$decode_model" "$quant" "$method"
      log "$dir: $(sed -n 3p "$dir/result.txt")"
      # the Python decode of the same model with the same (greedy) search: the integer reference
      # for the quantized models, PyTorch for FP32; stages 4-6 made it with --decode_mode greedy
      ref=$out/decode_${set}_greedy
      if [ ! -f "$ref/hyp.txt" ]; then
        ref=$dir/python_greedy
        # shellcheck disable=SC2046
        decode_split "$mexp" "$set" "$ref" --mode greedy $( [ "$method" = PTQ ] && echo --quant "$out/quant.json" )
      fi
      if [ "$quant" = FP32 ]; then what="PyTorch FP32"; else what="integer reference"; fi
      python -m rsqasr.bin.compare_hyps --ref "data/$set/text" --a "$dir/hyp.txt" --b "$ref/hyp.txt" \
        --label "rsq-decode $decode_target vs $what" --out "$dir/engine_agreement.json"
      # audio in: the same model from data/<set>/wav.scp, its fbank computed by rsq-decode (the
      # model file's FBNK options), checked against stage 2's features and the feats.scp decode
      if [ -f "data/$set/wav.scp" ] && ! grep -q '|' "data/$set/wav.scp"; then  # files, not pipes
        wdir=$dir/wav
        split_scp=wav.scp split_run "$set" "$wdir" "$bin" --threads 1 --dump-feats "$wdir/feats.JOB.ark" \
          "$file" "$wdir/split/wav.JOB.scp" "$wdir/split/hyp.JOB.txt"
        python -m rsqasr.bin.compare_feats --a "$wdir"/feats.*.ark --b "data/$set/feats.scp" \
          --label "rsq-decode $decode_target fbank vs stage 2 (kaldi-native-fbank)" --out "$dir/wav_features.json"
        rm -f "$wdir"/feats.*.ark
        python -m rsqasr.bin.compare_hyps --ref "data/$set/text" --a "$wdir/hyp.txt" --b "$dir/hyp.txt" \
          --label "rsq-decode $decode_target from wav.scp vs from feats.scp" --out "$dir/wav_agreement.json"
      fi
    done
    # shellcheck disable=SC2086  # the chunk sizes are separate words
    python -m rsqasr.bin.engine_latency --model "$file" --feats_scp "data/$valid_set/feats.scp" \
      --armv7_instructions "$count_armv7_instructions" --out "$(dirname "$file")/latency.json" \
      --stream_chunks $stream_chunks \
      || { log "Error: latency measurement of $file failed"; exit 1; }
    mark_done "stage8_engine_${exp_name}_${name}_$decode_target" "$settings"
  done < <(model_variants)
  if [ -f "$exp/$decode_model" ]; then  # the same FP32 model outside the engine, for comparison
    settings="model=$(digest "$exp/$decode_model")"
    if ! stage_is_done "stage8_e2e_latency_$exp_name" "$settings"; then
      mkdir -p "$exp/export"
      python -m rsqasr.bin.e2e_latency --exp_dir "$exp" --model "$decode_model" --out "$exp/export/e2e_latency.json" \
        > "$exp/export/e2e_latency.log" 2>&1 || { tail -n 20 "$exp/export/e2e_latency.log"; log "Error: e2e_latency failed"; exit 1; }
      mark_done "stage8_e2e_latency_$exp_name" "$settings"
    fi
  fi
  python -m rsqasr.bin.make_results --exp_root exp --results RESULTS.md
fi

log "Successfully finished stages $stage..$stop_stage in ${SECONDS}s"
