#!/usr/bin/env bash
# Configure + build the native engine.  Usage: src_arm/build.sh host|armv7|aarch64|asan
# e.g.: src_arm/build.sh armv7    (-> src_arm/build-armv7, runs under qemu-arm)
#       src_arm/build.sh aarch64  (-> src_arm/build-aarch64, runs under qemu-aarch64)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ne 1 ]; then
  echo "Usage: $0 host|armv7|aarch64|asan" >&2
  exit 2
fi
jobs=$(nproc 2>/dev/null || echo 2)
case "$1" in
  host)  dir=$here/build-host;  args=(-DCMAKE_BUILD_TYPE=Release) ;;
  armv7) dir=$here/build-armv7; args=(-DCMAKE_BUILD_TYPE=Release
           -DCMAKE_TOOLCHAIN_FILE=$here/cmake/arm-linux-gnueabihf.cmake) ;;
  aarch64) dir=$here/build-aarch64; args=(-DCMAKE_BUILD_TYPE=Release
           -DCMAKE_TOOLCHAIN_FILE=$here/cmake/aarch64-linux-gnu.cmake) ;;
  asan)  dir=$here/build-asan;  args=(-DCMAKE_BUILD_TYPE=Debug -DRSQ_SANITIZE=ON) ;;
  *) echo "$0: unknown target '$1' (host|armv7|aarch64|asan)" >&2; exit 2 ;;
esac
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$here" -B "$dir" "${args[@]}" >/dev/null
fi
cmake --build "$dir" -j "$jobs"
echo "$0: built $1 in $dir"
