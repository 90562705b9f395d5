#!/usr/bin/env bash
# Build host, armv7 (tests run through qemu-arm), aarch64 (qemu-aarch64) and asan, run ctest in each; then a short fuzz
# smoke of rsq-decode's model loader and ark reader (src_arm/fuzz/fuzz.sh) when clang is there.
# Usage: src_arm/test.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
rc=0
for target in host armv7 aarch64 asan; do
  "$here/build.sh" "$target"
  echo "== ctest $target"
  if ! (cd "$here/build-$target" && ctest --output-on-failure -j "$jobs"); then
    echo "$0: ctest FAILED for $target" >&2
    rc=1
  fi
done
# fuzz smoke of the model loader and the ark reader (5 s each, fixed seed) when clang has libFuzzer
if command -v clang >/dev/null &&
   echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }' |
     clang -x c - -fsanitize=fuzzer -o /dev/null 2>/dev/null; then
  echo "== fuzz smoke"
  if ! "$here/fuzz/fuzz.sh" 5; then
    echo "$0: fuzz smoke FAILED" >&2
    rc=1
  fi
else
  echo "== fuzz smoke skipped (no clang with libFuzzer: apt-get install clang libclang-rt-14-dev)"
fi
echo "$0: done in $(( $(date +%s) - start )) s, status $rc"
exit $rc
