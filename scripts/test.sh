#!/usr/bin/env bash
# Set up the ComfyUI host with the test dependencies and the browser (first run only) and run the whole test suite.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WITH_TEST_DEPS=1 WITH_BROWSER=1 "$REPO/scripts/setup_host.sh"
source "${SA_HOST_DIR:-$REPO/.host}/host.env"
cd "$REPO"
exec "$SA_HOST_PYTHON" -m pytest "$@"
