"""Shared fixtures.

- `comfy_host`: one real headless ComfyUI (set up by scripts/setup_host.sh) with this pack loaded, serving a
  temporary models root that tests fill with small checkpoints in the official formats.
- `comfy_inprocess`: ComfyUI's modules importable in this process (CPU), for tests of patches and
  samplers without the HTTP server; `pack` is this pack imported the way ComfyUI imports it.
"""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

from comfy_host import ComfyHost, read_host_env  # noqa: E402


@pytest.fixture(scope="session")
def models_root(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def comfy_host(models_root):
    host = ComfyHost.from_setup(models_dir=models_root)
    host.start()
    yield host
    host.stop()


@pytest.fixture(scope="session")
def comfy_root():
    return read_host_env()[1]


@pytest.fixture(scope="session")
def comfy_inprocess(comfy_root):
    """Import ComfyUI in-process on the CPU. Its root goes first on sys.path so that `nodes` is ComfyUI's."""
    if comfy_root not in sys.path:
        sys.path.insert(0, comfy_root)
    saved_argv = sys.argv
    sys.argv = [sys.argv[0]]
    try:
        from comfy.cli_args import args
        args.cpu = True
        # PyTorch's SDPA, as ComfyUI uses on GPUs; the CPU default (sub-quadratic) rounds differently.
        args.use_pytorch_cross_attention = True
        import utils.extra_config  # noqa: F401  must precede `import nodes` (see comfyui_host_notes §1.5)
        import comfy.model_management  # noqa: F401
        import nodes
    finally:
        sys.argv = saved_argv
    assert Path(nodes.__file__).parent == Path(comfy_root), nodes.__file__
    return comfy_root


@pytest.fixture(scope="session")
def pack(comfy_inprocess):
    """This pack as ComfyUI loads it: a package named after its folder, with relative imports."""
    name = "ComfyUI_StableAnimator_under_test"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
