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
export PATH="$RSQ_ROOT/utils:$RSQ_ROOT/src_arm/build-host/bin:$RSQ_ROOT/src_arm/build-armv7/bin:$PATH"
export LC_ALL=C             # Kaldi's byte-order sorting of every key file
export PYTHONIOENCODING=utf-8
export PYTHONUNBUFFERED=1   # job logs show progress as it happens
