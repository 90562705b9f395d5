# Sourced by utils/run_local.sh and egs/TEMPLATE/asr.sh (not run on its own).
# kill_tree <pid>: send TERM to a process and all its descendants, the children first, so that
# nothing of a killed job keeps running with PPID 1.
kill_tree() {
  local c
  for c in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$c"; done
  kill -TERM "$1" 2>/dev/null || true
}
