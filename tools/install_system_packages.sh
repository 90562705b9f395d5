#!/usr/bin/env bash
# Install the Debian packages the project needs, only those missing (idempotent).
#   tools/install_system_packages.sh
# Needs root (or sudo) only when something is missing.
set -euo pipefail

# audio: sox (speed perturbation pipes), libsndfile1 (soundfile)
# mini corpus: espeak-ng (optional voices), fortunes-zh (Chinese text)
# scoring: sctk (sclite)
# native engine: cmake, compilers, the ARMv7 and AArch64 cross toolchains, qemu-user, SIMDe
# fuzzing rsq-decode's loaders: clang with libFuzzer (libclang-rt-14-dev)
# downloads and venv: curl, python3-venv
pkgs=(sox libsndfile1 espeak-ng fortunes-zh sctk cmake gcc g++ make curl
      gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libsimde-dev python3-venv
      clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "$0: all ${#pkgs[@]} Debian packages are installed"
  exit 0
fi
echo "$0: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "$0: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "$0: installed ${missing[*]}"
