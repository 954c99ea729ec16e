"""stableanimator_core is plain torch: it imports and works without ComfyUI anywhere on sys.path."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_core_never_imports_comfy_in_source():
    offenders = []
    for path in (REPO / "stableanimator_core").rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.strip().split()
            if len(words) >= 2 and words[0] in ("import", "from") and words[1].split(".")[0] in (
                    "comfy", "comfy_api", "folder_paths", "nodes", "comfy_extras", "execution", "server"):
                offenders.append(f"{path.name}: {line.strip()}")
    assert not offenders, offenders


def test_every_core_module_imports_in_a_clean_interpreter():
    core = REPO / "stableanimator_core"
    modules = sorted(".".join(p.relative_to(core).with_suffix("").parts) for p in core.rglob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(REPO)!r}]\n"
        f"for m in {modules!r}: importlib.import_module('stableanimator_core.' + m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('comfy', 'comfy_api', 'folder_paths', 'nodes')]\n"
        "assert not bad, bad\n"
        "print('ok', len(" + repr(modules) + "))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
