#!/usr/bin/env bash
# Executed guest instructions per kernel call under qemu-arm (or qemu-aarch64 for an AArch64 build).
# Usage: bench/qemu_count.sh <build-armv7|build-aarch64 dir> <shape 0..6> gemm|wino [auto|neon|dot|i8mm]
# Runs bench_rsq count with 1 and 3 calls and prints (n3 - n1) / 2 (setup, packing and process
# start cancel out). Counts with the qemu plugin ../tools/qemu_insn_count.c when the host build has
# it (build-host/lib/qemu_insn_count.so, or $QEMU_INSN_COUNT: seconds per shape); otherwise through
# qemu's execution log read by qemu_icount (minutes per shape; QEMU_ICOUNT_TOP=1 profiles).
set -euo pipefail
if [ $# -ne 3 ] && [ $# -ne 4 ]; then echo "Usage: $0 <build dir> <shape> gemm|gemm24|wino [auto|neon|dot|i8mm]" >&2; exit 2; fi
bdir=$1; shape=$2; algo=$3; impl=${4:-auto}
qemu=(qemu-arm -L /usr/arm-linux-gnueabihf)
case $(basename "$bdir") in *aarch64*) qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu) ;; esac
here=$(cd "$(dirname "$0")" && pwd)
counter=$bdir/qemu_icount
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
plugin=${QEMU_INSN_COUNT:-$here/../build-host/lib/qemu_insn_count.so}
count() {
  if [ -f "$plugin" ] && [ -z "${QEMU_ICOUNT_TOP:-}" ]; then
    "${qemu[@]}" -plugin "$plugin,out=$tmp/n$1" \
      "$bdir/bench_rsq" count "$shape" "$algo" "$1" "$impl" > /dev/null
    head -n 1 "$tmp/n$1"
    return
  fi
  [ -x "$counter" ] || gcc -O2 -o "$counter" "$here/qemu_icount.c"   # the log counter, built on first use
  mkfifo "$tmp/log$1"
  "$counter" < "$tmp/log$1" > "$tmp/n$1" &
  local pid=$!
  "${qemu[@]}" -d in_asm,exec,nochain -D "$tmp/log$1" \
    "$bdir/bench_rsq" count "$shape" "$algo" "$1" "$impl" > /dev/null
  wait $pid
  cat "$tmp/n$1"
}
n1=$(count 1); n3=$(count 3)
echo $(( (n3 - n1) / 2 ))
