#!/usr/bin/env bash
# Same command line as utils/run_local.sh, but submits the jobs as one Slurm job array and
# waits for it (sbatch --wait). Select it in cmd.sh, e.g.
#   export train_cmd="utils/slurm.sh --mem 8G --time 24:00:00 --gpu 1"
#
#   utils/slurm.sh [--mem M] [--time T] [--gpu G] [--num-threads C] [--max-jobs-run M]
#                  [--partition P] JOB=1:N <log-with-JOB> <command with JOB> ...
#
# The log of job n is the log pattern with JOB replaced by n; it ends with
# "# Ended (code C)", which this script reads to report failures like run_local.sh.
set -u

mem=""; time_limit=""; gpu=0; threads=1; max_jobs_run=""; partition=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mem) mem="$2"; shift 2 ;;
    --time) time_limit="$2"; shift 2 ;;
    --gpu) gpu="$2"; shift 2 ;;
    --num-threads|--num_threads) threads="$2"; shift 2 ;;
    --max-jobs-run|--max_jobs_run) max_jobs_run="$2"; shift 2 ;;
    --partition) partition="$2"; shift 2 ;;
    *) break ;;
  esac
done

jobvar=""; first=1; last=1
if [[ "${1:-}" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
  jobvar="${BASH_REMATCH[1]}"; first="${BASH_REMATCH[2]}"; last="${BASH_REMATCH[3]}"; shift
fi
if [ $# -lt 2 ]; then
  echo "Usage: $0 [slurm options] [JOB=1:N] <log-file> <command> ..." >&2
  exit 2
fi
command -v sbatch >/dev/null || { echo "$0: sbatch not found; is this a Slurm cluster? (use utils/run_local.sh in cmd.sh)" >&2; exit 1; }

logpat="$1"; shift
cmd=""
for w in "$@"; do cmd+="$(printf '%q' "$w") "; done
logdir=$(dirname "$logpat")
mkdir -p "$logdir/q"
script="$logdir/q/$(basename "${logpat//$jobvar/}" .log).$$.sh"
# The array task id replaces JOB at run time, in the command and the log name.
{
  echo '#!/usr/bin/env bash'
  echo "cd $(printf '%q' "$PWD")"
  echo '[ -f ./path.sh ] && . ./path.sh'
  echo 'n=${SLURM_ARRAY_TASK_ID:-1}'
  if [ -n "$jobvar" ]; then
    echo "cmd=$(printf '%q' "$cmd"); cmd=\${cmd//$jobvar/\$n}"
    echo "log=$(printf '%q' "$logpat"); log=\${log//$jobvar/\$n}"
  else
    echo "cmd=$(printf '%q' "$cmd")"
    echo "log=$(printf '%q' "$logpat")"
  fi
  echo 'mkdir -p "$(dirname "$log")"'
  echo '{ echo "# $cmd"; echo "# Started at $(date) on $(hostname)"; } > "$log"'
  echo 'start=$SECONDS; bash -c "$cmd" >> "$log" 2>&1; rc=$?'
  echo '{ echo "# Accounting: time=$((SECONDS - start)) threads='"$threads"'"; echo "# Ended (code $rc) at $(date)"; } >> "$log"'
  echo 'exit $rc'
} > "$script"
chmod +x "$script"

opts=(--wait --job-name="$(basename "$script" .sh)" --cpus-per-task="$threads" -o /dev/null)
array="$first-$last"; [ -n "$max_jobs_run" ] && array+="%$max_jobs_run"
opts+=(--array="$array")
[ -n "$mem" ] && opts+=(--mem="$mem")
[ -n "$time_limit" ] && opts+=(--time="$time_limit")
[ -n "$partition" ] && opts+=(--partition="$partition")
[ "$gpu" != 0 ] && opts+=(--gres="gpu:$gpu")

sbatch "${opts[@]}" "$script" >/dev/null
sbatch_rc=$?

failed=()
for ((n = first; n <= last; n++)); do
  log="$logpat"; [ -n "$jobvar" ] && log="${logpat//$jobvar/$n}"
  grep -q '^# Ended (code 0)' "$log" 2>/dev/null || failed+=("$n")
done
if [ ${#failed[@]} -gt 0 ] || [ $sbatch_rc -ne 0 ]; then
  n="${failed[0]:-$first}"
  log="$logpat"; [ -n "$jobvar" ] && log="${logpat//$jobvar/$n}"
  echo "$0: ${#failed[@]} / $((last - first + 1)) failed (sbatch exit $sbatch_rc); log is in $log" >&2
  [ -f "$log" ] && { echo "$0: ---- last lines of $log ----" >&2; tail -n 20 "$log" >&2; }
  exit 1
fi
rm -f "$script"
exit 0
