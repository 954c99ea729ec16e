#!/usr/bin/env bash
# Main job: set up the ComfyUI host (first run only) and run the demo workflow headless on the CPU.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WITH_TEST_DEPS=1 "$REPO/scripts/setup_host.sh"   # the demo writes its random weights with the test tools
source "${SA_HOST_DIR:-$REPO/.host}/host.env"
exec "$SA_HOST_PYTHON" "$REPO/scripts/demo.py" "$@"
