"""What the pack imports is what it declares, and a missing optional package costs only the nodes that need it."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from comfy_host import read_host_env

REPO = Path(__file__).resolve().parent.parent
PACK_SOURCES = [REPO / "__init__.py", REPO / "install.py", *(REPO / "nodes").glob("*.py"),
                *(REPO / "stableanimator_core").rglob("*.py")]
COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "nodes", "latent_preview",
                 "node_helpers", "server", "execution"}
DIST_OF_IMPORT = {"cv2": {"opencv-python"}, "PIL": {"pillow"}, "onnxruntime": {"onnxruntime", "onnxruntime-gpu"}}


def requirement_names(path: Path) -> set:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].lower())
    return names


def pack_imports() -> set:
    found = set()
    for path in PACK_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in COMFY_MODULES}


def dists(module: str) -> set:
    return DIST_OF_IMPORT.get(module, {module.lower()})


def test_every_import_is_declared_or_comes_with_comfyui():
    ours = requirement_names(REPO / "requirements.txt")
    host = requirement_names(Path(read_host_env()[1]) / "requirements.txt") | {"torch", "torchvision"}
    imports = pack_imports()
    assert {"cv2", "onnx", "onnxruntime", "insightface", "numpy", "torch"} <= imports, imports
    undeclared = sorted(m for m in imports if not dists(m) & (ours | host))
    assert not undeclared, f"imported but neither in requirements.txt nor in ComfyUI's: {undeclared}"
    # the pack's own extras are declared by the pack, not left to whatever ComfyUI happens to ship
    for module in ("cv2", "onnx", "insightface"):
        assert dists(module) & ours, module


def test_every_declared_package_is_imported():
    imported = set().union(*(dists(m) for m in pack_imports()))
    unused = sorted(requirement_names(REPO / "requirements.txt") - imported)
    assert not unused, f"declared but never imported: {unused}"


def test_pyproject_lists_the_same_packages():
    text = (REPO / "pyproject.toml").read_text()
    block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    listed = {re.split(r"[<>=!~;\[ ]", s.strip().strip('"'), maxsplit=1)[0].lower()
              for s in re.findall(r'"[^"]+"', block)}
    assert listed == requirement_names(REPO / "requirements.txt") - {"onnxruntime", "onnxruntime-gpu"}


MISSING_CV2 = """
import asyncio, importlib, json, logging, sys
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
sys.modules["cv2"] = None   # as if OpenCV were not installed in this Python
from comfy_host import import_comfy, import_pack
import_comfy(cpu=True)
import_pack("sa_without_cv2")
registry = importlib.import_module("sa_without_cv2.nodes")
nodes = asyncio.run(registry.StableAnimatorExtension().get_node_list())
print(json.dumps({"nodes": sorted(n.define_schema().node_id for n in nodes), "failed": sorted(registry.FAILED_MODULES)}))
"""


def test_a_missing_package_drops_only_the_nodes_that_need_it():
    python = read_host_env()[0]
    run = subprocess.run([python, "-c", MISSING_CV2, str(REPO / "scripts")], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["failed"] == ["pose"], result
    assert "StableAnimatorPoseRender" not in result["nodes"] and "StableAnimatorDWPoseLoader" not in result["nodes"]
    assert {"StableAnimatorModelLoader", "StableAnimatorConditioning", "StableAnimatorFaceEmbed"} <= set(result["nodes"])
    others = {n.value.value for path in (REPO / "nodes").glob("*.py") if path.name != "pose.py"
              for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.keyword) and n.arg == "node_id"}
    assert set(result["nodes"]) == others   # every node of the other modules, none of pose.py
    line = next(line for line in run.stderr.splitlines() if "nodes/pose.py are not available" in line)
    print("\n" + line)
    assert "cv2" in line and "install opencv-python" in line and "other StableAnimator nodes still load" in line


def test_no_machine_paths_in_tests_or_code():
    """Tests and code read files relative to the repository or a temporary folder, never a machine's path."""
    pattern = re.compile(r"""["'](/work|/tmp|/home|/root|/opt)/""")
    offenders = [f"{p.relative_to(REPO)}:{i}" for folder in ("tests", "scripts", "nodes", "stableanimator_core")
                 for p in (REPO / folder).rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders
