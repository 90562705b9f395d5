#!/usr/bin/env bash
# Build the libFuzzer targets (model loader + executor, Kaldi ark reader) with clang, ASan and
# UBSan, and run each for a fixed time with a fixed seed on a scratch copy of the seed corpus.
# Usage: src_arm/fuzz/fuzz.sh [seconds per target (default 5)] [jobs (default 1)]
# Exit status 0 when no target crashed; prints each target's executions. Needs clang and
# libclang-rt-14-dev (tools/install_system_packages.sh); src_arm/test.sh runs a 5 s smoke.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
secs=${1:-5}
jobs=${2:-1}
cc=${CC_FUZZ:-clang}
if ! command -v "$cc" >/dev/null; then
  echo "$0: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
out=$root/build-fuzz
mkdir -p "$out"
# librsq as CMake builds it on x86-64 (NEON kernels through SIMDe, AVX2 kernels; not the VNNI
# build, which only the CMake build adds), + app/
base=(-std=gnu11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -Wno-unknown-pragmas
      -D_FILE_OFFSET_BITS=64 -DRSQM_FUZZING -DRSQ_WITH_SIMDE_NEON=1 -DRSQ_WITH_AVX2=1
      -I"$root"/include -I"$root"/src -I"$root"/app)
stale=0
if [ ! -x "$out/fuzz_model" ] || [ ! -x "$out/fuzz_ark" ] ||
   [ -n "$(find "$root"/src "$root"/app "$here" -newer "$out/fuzz_ark" -name '*.[ch]' | head -1)" ]; then
  stale=1
fi
if [ $stale = 1 ]; then
  objs=()
  for f in "$root"/src/*.c "$root"/app/*.c; do
    [ "$(basename "$f")" = rsq_decode.c ] && continue # the command line: main()
    case $(basename "$f") in gemm_s8_dot.c|gemm_s8_mmla.c) continue ;; esac # AArch64 SDOT/SMMLA kernels: not on x86-64
    extra=()
    case $(basename "$f") in
      gemm_s8_neon.c|wino23_s8_neon.c|dwconv_s8_neon.c) extra=(-mavx2 -mfma -fno-sanitize=shift) ;;
      gemm_s8_avx2.c|wino23_s8_avx2.c|dwconv_s8_avx2.c) extra=(-mavx2 -mfma) ;;
      exec.c) extra=(-ffp-contract=off) ;;
    esac
    o=$out/$(basename "$f" .c).o
    "$cc" "${base[@]}" -fsanitize=fuzzer-no-link "${extra[@]}" -c "$f" -o "$o"
    objs+=("$o")
  done
  for t in model ark; do
    "$cc" "${base[@]}" -fsanitize=fuzzer "$here/fuzz_$t.c" "${objs[@]}" -lm -o "$out/fuzz_$t"
  done
fi
rc=0
for t in model ark; do
  work=$(mktemp -d)
  log=$out/fuzz_$t.log
  set +e
  (cd "$out" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     "./fuzz_$t" -seed=1 -max_total_time="$secs" -jobs="$jobs" -workers="$jobs" -max_len=8192 -rss_limit_mb=1024 \
     -timeout=10 -print_final_stats=1 -artifact_prefix="$out/crash_$t-" "$work" "$here/corpus/$t" >"$log" 2>&1)
  status=$?
  set -e
  rm -rf "$work"
  runs=$(grep -h "stat::number_of_executed_units" "$log" "$out"/fuzz-*.log 2>/dev/null | awk '{s += $2} END {print s + 0}')
  if [ $status -ne 0 ]; then
    echo "$0: fuzz_$t FAILED (status $status), see $log and $out/crash_$t-*" >&2
    tail -30 "$log" >&2
    rc=1
  else
    echo "$0: fuzz_$t: $runs executions in ${secs} s x $jobs job(s), no crash"
  fi
  rm -f "$out"/fuzz-*.log
done
exit $rc
