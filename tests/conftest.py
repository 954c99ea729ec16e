"""Shared fixtures.

- `comfy_host`: one real headless ComfyUI (set up by scripts/setup_host.sh) with this pack loaded, serving a
  temporary models root that tests fill with small checkpoints in the official formats.
- `comfy_inprocess`: ComfyUI's modules importable in this process (CPU), for tests of patches and
  samplers without the HTTP server; `pack` is this pack imported the way ComfyUI imports it.
"""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from comfy_host import ComfyHost, import_comfy, import_pack, read_host_env  # noqa: E402


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def comfy_host(models_root):
    # tests/host_nodes: test-only helper nodes (keypoints from JSON), loaded as another pack would be
    host = ComfyHost.from_setup(models_dir=models_root, custom_nodes=REPO / "tests" / "host_nodes")
    host.start()
    yield host
    host.stop()


@pytest.fixture(scope="session")
def comfy_root():
    return read_host_env()[1]


@pytest.fixture(scope="session")
def comfy_inprocess(comfy_root):
    """ComfyUI imported in-process on the CPU, with PyTorch's SDPA as on GPUs (the CPU default, sub-quadratic
    attention, rounds differently)."""
    import_comfy(cpu=True, sdpa=True)
    import nodes
    assert Path(nodes.__file__).parent == Path(comfy_root), nodes.__file__
    return comfy_root


@pytest.fixture(scope="session")
def pack(comfy_inprocess):
    """This pack as ComfyUI loads it: a package named after its folder, with relative imports."""
    return import_pack("ComfyUI_StableAnimator_under_test")
