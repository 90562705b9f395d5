#!/usr/bin/env bash
# Seen vs unseen sentences, both from held-out speakers: synthesize data/test_seen (each of the
# test set's speakers reads <per-speaker> TRAINING sentences), make its features like stage 2 and
# decode it with a trained model next to the test set (new speakers, new sentences) and a
# training subset (seen speakers, seen sentences). A model that learned speech scores about the
# same on test_seen and test; one that learned the sentences does much better on test_seen.
#
# Run after stage 4 from the recipe dir: local/seen_sentence_probe.sh exp/train_convdfsmn
set -euo pipefail

per_speaker=50   # training sentences per test speaker
mini_scale=1.0   # must be the corpus' --scale / --seed (local/data.sh, through --local_data_opts)
mini_seed=1
model=valid.cer.ave.pth

help_message="Usage: $0 [--per_speaker N] [--mini_scale S] [--mini_seed N] [--model F] <exp-dir>"
. utils/parse_options.sh
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 2; }
exp=$1
[ -f "$exp/$model" ] || { echo "$0: $exp/$model not found (train first: ./run.sh --stop_stage 4)" >&2; exit 1; }
for f in data/train/feats.scp data/train/cmvn.ark data/test/feats.scp; do
  [ -f "$f" ] || { echo "$0: $f not found (run stages 0-2 first)" >&2; exit 1; }
done
. ./path.sh

out=$exp/seen_sentence_probe
mkdir -p "$out"
d=data/test_seen
python -m rsqasr.bin.synth_mini_aishell --out "$d" --seen_probe "$per_speaker" \
  --scale "$mini_scale" --seed "$mini_seed"
python -m rsqasr.bin.compute_fbank --wav_scp "$d/wav.scp" --out_ark "$(pwd)/$d/feats.ark" \
  --out_scp "$d/feats.scp" --out_num_frames "$d/utt2num_frames"
# a training subset of the same size as test_seen: seen speakers, seen sentences
n=$(wc -l < "$d/text")
awk -v n="$n" -v total="$(wc -l < data/train/feats.scp)" 'NR % int(total / n + 1) == 0' data/train/feats.scp \
  | head -n "$n" > "$out/train_subset.scp"

for set in test_seen test train_subset; do
  scp=data/$set/feats.scp ref=data/$set/text
  [ "$set" = train_subset ] && scp=$out/train_subset.scp ref=data/train/text
  python -m rsqasr.bin.decode --exp_dir "$exp" --model "$model" --feats_scp "$scp" --out "$out/$set.hyp.txt" \
    --num_threads 2
  awk 'NR == FNR { keep[$1] = 1; next } ($1 in keep)' "$out/$set.hyp.txt" "$ref" > "$out/$set.ref.txt"
  python -m rsqasr.bin.score --ref "$out/$set.ref.txt" --hyp "$out/$set.hyp.txt" --dir "$out/$set" | tail -n 1
done
