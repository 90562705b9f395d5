#!/usr/bin/env bash
# Run the benchmark: host timings (1 and 2 threads) + torch/onnxruntime baselines + qemu-arm and
# qemu-aarch64 instruction counts; writes src_arm/BENCH.md, src_arm/bench.json, src_arm/bench_speedup.png.
# Usage: src_arm/bench.sh [arm_shapes]   e.g.: src_arm/bench.sh 0,3   (default: all 7 shapes)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-$here/../.venv/bin/python}
"$here/build.sh" host
"$here/build.sh" armv7
if command -v aarch64-linux-gnu-gcc > /dev/null; then "$here/build.sh" aarch64; fi
"$py" "$here/bench/bench.py" --host-bin "$here/build-host/bench_rsq" --arm-dir "$here/build-armv7" \
  --arm-shapes "${1:-0,1,2,3,4,5,6}"
echo "$0: wrote $here/BENCH.md $here/bench.json $here/bench_speedup.png"
