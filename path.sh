# Environment for the recipes: source it from a recipe dir (egs/<recipe>/path.sh links here).
# Activates the project's virtualenv (made by `make install`) and puts the Kaldi-style
# helpers and the native rsq-decode binaries on PATH.
RSQ_ROOT=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
export RSQ_ROOT
if [ -f "$RSQ_ROOT/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$RSQ_ROOT/.venv/bin/activate"
else
  echo "path.sh: no virtualenv at $RSQ_ROOT/.venv; run 'make install' in $RSQ_ROOT first" >&2
fi
export PATH="$RSQ_ROOT/utils:$RSQ_ROOT/src_arm/build-host/bin:$RSQ_ROOT/src_arm/build-armv7/bin:$RSQ_ROOT/src_arm/build-aarch64/bin:$PATH"
# Where the tools that run the ARMv7 engine off ARM are (make install builds the first two; set
# these before sourcing to use another build or sysroot): the ARMv7 build dir, the qemu plugin
# that counts executed guest instructions, and the ARM sysroot qemu-arm loads libraries from.
export RSQ_ARMV7_BUILD=${RSQ_ARMV7_BUILD:-$RSQ_ROOT/src_arm/build-armv7}
export RSQ_QEMU_PLUGIN=${RSQ_QEMU_PLUGIN:-$RSQ_ROOT/src_arm/build-host/lib/qemu_insn_count.so}
export RSQ_ARMV7_SYSROOT=${RSQ_ARMV7_SYSROOT:-/usr/arm-linux-gnueabihf}
# ... and the same for the AArch64 build (qemu-aarch64)
export RSQ_AARCH64_BUILD=${RSQ_AARCH64_BUILD:-$RSQ_ROOT/src_arm/build-aarch64}
export RSQ_AARCH64_SYSROOT=${RSQ_AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}
export LC_ALL=C             # Kaldi's byte-order sorting of every key file
export PYTHONIOENCODING=utf-8
export PYTHONUNBUFFERED=1   # job logs show progress as it happens
