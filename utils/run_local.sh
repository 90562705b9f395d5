#!/usr/bin/env bash
# Run a command as N parallel jobs on this machine, one log file per job, in the spirit of
# Kaldi's utils/run.pl (same command line, so a recipe can swap in utils/slurm.sh):
#
#   utils/run_local.sh [--max-jobs-run M] JOB=1:N <log-with-JOB> <command with JOB> ...
#   utils/run_local.sh <log> <command> ...                 # a single job
#
# Every literal "JOB" in the log path and the command words is replaced by the job index.
# Each log starts with the command line and ends with "# Ended (code C) at <date>".
# If any job fails, the script waits for the rest, prints which failed and the tail of the
# first failed log, and exits 1. Exit 2 on usage errors.
set -u

max_jobs_run=$(nproc 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
  case "$1" in
    --max-jobs-run|--max_jobs_run) max_jobs_run="$2"; shift 2 ;;
    --num-threads|--num_threads|--mem|--gpu|--time) shift 2 ;;  # accepted for slurm.sh compatibility
    *) break ;;
  esac
done

usage() {
  echo "Usage: $0 [--max-jobs-run M] [JOB=1:N] <log-file> <command> ..." >&2
  echo "e.g.: $0 JOB=1:4 exp/log/fbank.JOB.log python -m rsqasr.bin.compute_fbank --job JOB ..." >&2
  exit 2
}

jobvar=""; first=1; last=1
if [[ "${1:-}" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
  jobvar="${BASH_REMATCH[1]}"; first="${BASH_REMATCH[2]}"; last="${BASH_REMATCH[3]}"
  shift
  [ "$first" -le "$last" ] || { echo "$0: empty job range $first:$last" >&2; exit 2; }
fi
[ $# -ge 2 ] || usage
case "$max_jobs_run" in ''|*[!0-9]*|0) echo "$0: --max-jobs-run must be a positive integer" >&2; exit 2 ;; esac
logpat="$1"; shift
if [ -n "$jobvar" ] && [ $((last - first)) -gt 0 ] && [[ "$logpat" != *"$jobvar"* ]]; then
  echo "$0: the log file '$logpat' must contain '$jobvar' when running several jobs" >&2; exit 2
fi

substitute() {  # substitute <job-index> <word>
  if [ -n "$jobvar" ]; then printf '%s' "${2//$jobvar/$1}"; else printf '%s' "$2"; fi
}

run_one() {  # run_one <job-index>
  local n=$1 log cmd="" w
  log=$(substitute "$n" "$logpat")
  mkdir -p "$(dirname "$log")"
  for w in "${cmdwords[@]}"; do cmd+="$(printf '%q' "$(substitute "$n" "$w")") "; done
  {
    echo "# $cmd"
    echo "# Started at $(date)"
  } > "$log"
  local start=$SECONDS rc
  bash -c "$cmd" >> "$log" 2>&1 < /dev/null
  rc=$?
  {
    echo "# Accounting: time=$((SECONDS - start)) threads=1"
    echo "# Ended (code $rc) at $(date)"
  } >> "$log"
  return $rc
}

cmdwords=("$@")
declare -A pid2job=()

# Killed (TERM, INT, HUP): stop every running job with its whole process tree, so nothing is left
# running with PPID 1 (background jobs of a script ignore SIGINT, so Ctrl-C alone would not).
. "$(dirname "${BASH_SOURCE[0]}")/kill_tree.sh"  # kill_tree <pid>: the process and its descendants
on_signal() {  # on_signal <exit code>
  trap - TERM INT HUP
  local pid
  for pid in "${!pid2job[@]}"; do kill_tree "$pid"; done
  wait 2>/dev/null
  echo "$0: killed; stopped ${#pid2job[@]} running job(s)" >&2
  exit "$1"
}
trap 'on_signal 143' TERM
trap 'on_signal 130' INT
trap 'on_signal 129' HUP
failed=()
done_count=0
total=$((last - first + 1))

reap_one() {
  local pid rc
  wait -n -p pid; rc=$?
  done_count=$((done_count + 1))
  [ $rc -ne 0 ] && failed+=("${pid2job[$pid]}")
  unset "pid2job[$pid]"
  if [ "$total" -gt 1 ]; then echo "$0: $done_count/$total jobs done" >&2; fi
}

for ((n = first; n <= last; n++)); do
  while [ "${#pid2job[@]}" -ge "$max_jobs_run" ]; do reap_one; done
  run_one "$n" &
  pid2job[$!]=$n
done
while [ "${#pid2job[@]}" -gt 0 ]; do reap_one; done

if [ ${#failed[@]} -gt 0 ]; then
  IFS=$'\n' sorted=($(sort -n <<<"${failed[*]}")); unset IFS
  firstlog=$(substitute "${sorted[0]}" "$logpat")
  echo "$0: ${#failed[@]} / $total failed (jobs: ${sorted[*]}); log is in $firstlog" >&2
  echo "$0: ---- last lines of $firstlog ----" >&2
  tail -n 20 "$firstlog" >&2
  exit 1
fi
exit 0
