#!/usr/bin/env bash
# Configure + build the native engine.  Usage: src_arm/build.sh host|armv7|asan
# e.g.: src_arm/build.sh armv7    (-> src_arm/build-armv7, runs under qemu-arm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ]; then
  echo "Usage: $0 host|armv7|asan" >&2
  exit 2
fi
jobs=$(nproc 2>/dev/null || echo 2)
case "$1" in
  host)  dir=$here/build-host;  args=(-DCMAKE_BUILD_TYPE=Release) ;;
  armv7) dir=$here/build-armv7; args=(-DCMAKE_BUILD_TYPE=Release
           -DCMAKE_TOOLCHAIN_FILE=$here/cmake/arm-linux-gnueabihf.cmake) ;;
  asan)  dir=$here/build-asan;  args=(-DCMAKE_BUILD_TYPE=Debug -DRSQ_SANITIZE=ON) ;;
  *) echo "$0: unknown target '$1' (host|armv7|asan)" >&2; exit 2 ;;
esac
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$dir" "${args[@]}" >/dev/null
fi
cmake --build "$dir" -j "$jobs"
echo "$0: built $1 in $dir"
