#!/usr/bin/env bash
# Build host, armv7 (tests run through qemu-arm) and asan, run ctest in each.
# Usage: src_arm/test.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
jobs=$(nproc 2>/dev/null || echo 2)
start=$(date +%s)
rc=0
for target in host armv7 asan; do
  "$here/build.sh" "$target"
  echo "== ctest $target"
  if ! (cd "$here/build-$target" && ctest --output-on-failure -j "$jobs"); then
    echo "$0: ctest FAILED for $target" >&2
    rc=1
  fi
done
echo "$0: done in $(( $(date +%s) - start )) s, status $rc"
exit $rc
