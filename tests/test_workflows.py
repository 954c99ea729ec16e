"""The shipped workflows (workflows/*.json, ComfyUI's UI format, written by scripts/build_workflows.py): their
structure against the live host's /object_info, what they name (example inputs, thumbnails, model links), the
video size set in one place, and the driving-video workflow (the demo's) end to end through the UI -> API
conversion the demo uses (comfyui-autograph), on small weights in the official formats
(tests/fixtures/e2e_models.py). Every workflow also opens and runs in the real frontend: tests/test_browser.py."""
import json
from pathlib import Path

import numpy as np
import pytest

from comfy_host import EXAMPLE_INPUTS, PromptError, install_example_inputs, ui_to_api as to_api
from fixtures import e2e_models as e2e

pytestmark = [pytest.mark.host, pytest.mark.filterwarnings("ignore::FutureWarning")]
REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
SIZE = 64
FACE_REFERENCE = "e2e_reference.png"   # the stand-in face detector finds a face in this one, not in the astronaut
SIZE_SOURCES = {"StableAnimatorPoseRender", "StableAnimatorResizeImage"}


@pytest.fixture(scope="module")
def host(comfy_host, request):
    e2e.prepare_host(comfy_host, request)
    install_example_inputs(comfy_host.input_dir)
    from PIL import Image
    Image.fromarray(e2e.reference_rgb()).save(comfy_host.input_dir / FACE_REFERENCE)
    return comfy_host


@pytest.fixture(scope="module")
def object_info(host):
    return host.object_info()   # after the inputs and weights are in place: combo lists hold them


def load(path):
    return json.loads(Path(path).read_text())


def nodes_of(wf, node_type):
    return [n for n in wf["nodes"] if n["type"] == node_type]


def source_of(wf, node, input_name):
    """(source node, output name) feeding `input_name` of `node`, or None when it is not linked."""
    link_id = next((i["link"] for i in node["inputs"] if i["name"] == input_name), None)
    if link_id is None:
        return None
    link = next(l for l in wf["links"] if l[0] == link_id)
    src = next(n for n in wf["nodes"] if n["id"] == link[1])
    return src, src["outputs"][link[2]]["name"]


# -------------------------------------------------------------------------------------------------------------
# Structure of the UI files (no execution)

def test_every_workflow_is_shipped():
    names = {p.name for p in WORKFLOWS}
    assert {"stableanimator_basic.json", "stableanimator_driving_video.json", "stableanimator_hjb_identity.json",
            "stableanimator_long_video.json"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_ui_file_structure(path, object_info):
    wf = load(path)
    for key in ("nodes", "links", "groups", "extra", "version", "last_node_id", "last_link_id"):
        assert key in wf, f"{path.name}: no '{key}'"
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert len(nodes) == len(wf["nodes"]), "duplicate node ids"
    assert max(nodes) <= wf["last_node_id"]
    assert isinstance(wf["id"], str) and len(wf["id"]) == 36, f"{path.name}: the frontend refuses an id {wf['id']!r}"
    assert any(n["type"] == "MarkdownNote" for n in nodes.values()), "every workflow explains itself in a note"
    assert wf["groups"], "nodes are grouped"
    missing = sorted({n["type"] for n in nodes.values() if n["type"] not in FRONTEND_ONLY and n["type"] not in object_info})
    assert not missing, f"{path.name}: node types not in /object_info: {missing}"
    link_ids = set()
    for link in wf["links"]:
        lid, src, src_slot, dst, dst_slot, typ = link
        assert lid not in link_ids
        link_ids.add(lid)
        assert lid <= wf["last_link_id"]
        assert src in nodes and dst in nodes, f"link {lid} joins missing nodes"
        out = nodes[src]["outputs"][src_slot]
        inp = nodes[dst]["inputs"][dst_slot]
        assert lid in (out["links"] or []), f"link {lid} not listed on its output"
        assert inp["link"] == lid, f"link {lid} not the link of its input"
        assert out["type"] == inp["type"] == typ, f"link {lid}: {out['type']} -> {inp['type']} ({typ})"
        info = object_info.get(nodes[src]["type"])
        if info:   # the slot exists and has that type on the live node
            assert info["output"][src_slot] == typ, (nodes[src]["type"], src_slot, info["output"])
        info = object_info.get(nodes[dst]["type"])
        if info:
            spec = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
            assert inp["name"] in spec and spec[inp["name"]][0] == typ, (nodes[dst]["type"], inp["name"])
    for n in nodes.values():   # required connection inputs are all wired
        info = object_info.get(n["type"])
        if not info:
            continue
        wired = {i["name"] for i in n["inputs"] if i.get("link") is not None}
        for name, spec in info["input"].get("required", {}).items():
            if isinstance(spec[0], str) and spec[0] not in {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}:
                assert name in wired, f"{path.name}: {n['type']}.{name} is not connected"
    # seeds carry control_after_generate ("fixed") right after the seed value
    for n in nodes.values():
        info = object_info.get(n["type"]) or {}
        order = [k for k in info.get("input_order", {}).get("required", [])
                 if not isinstance(info["input"]["required"][k][0], str)
                 or info["input"]["required"][k][0] in {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}]
        if "seed" in order:
            values = n["widgets_values"]
            at = order.index("seed")
            assert values[at + 1] == "fixed", f"{n['type']}: seed is not followed by 'fixed': {values}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_converts_to_api_format(path, object_info):
    api = to_api(load(path), object_info)
    ui_types = [n["type"] for n in load(path)["nodes"] if n["type"] not in FRONTEND_ONLY]
    assert sorted(v["class_type"] for v in api.values()) == sorted(ui_types)
    for node in api.values():
        for value in node["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                assert str(value[0]) in api, f"{node['class_type']} links to a dropped node"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_names_what_ships(path):
    """Load Image names files of assets/inputs (copied into input/ once, README), the template browser finds a
    thumbnail, and the loader links the files the frontend's missing-model dialog can fetch."""
    wf = load(path)
    shipped = {f.name for f in EXAMPLE_INPUTS.iterdir()}
    for n in nodes_of(wf, "LoadImage"):
        assert n["widgets_values"][0] in shipped, (n.get("title"), n["widgets_values"][0], shipped)
    assert path.with_suffix(".jpg").is_file(), "no template thumbnail"
    for loader in nodes_of(wf, "StableAnimatorModelLoader"):
        models = loader["properties"].get("models")
        assert models, "the missing-model dialog gets nothing"
        for m in models:
            assert m["name"] in loader["widgets_values"], m
            # the frontend downloads only from these hosts and only these suffixes (MissingModelsWarning)
            assert m["url"].startswith("https://huggingface.co/") and m["url"].endswith("/" + m["name"]), m
            assert m["name"].endswith(".safetensors") and m["directory"] == "checkpoints", m


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_video_size_is_set_in_one_place(path):
    """Conditioning's width and height, and Face Boxes', come by link from the node that makes the pose images,
    which is the only node of the workflow with a size of its own."""
    wf = load(path)
    sources = [n for n in wf["nodes"] if n["type"] in SIZE_SOURCES]
    assert len(sources) == 1, [n["type"] for n in sources]
    source = sources[0]
    for n in nodes_of(wf, "StableAnimatorConditioning"):
        assert source_of(wf, n, "pose_images") == (source, "images")
    for n in nodes_of(wf, "StableAnimatorConditioning") + nodes_of(wf, "StableAnimatorFaceBoxes"):
        assert source_of(wf, n, "width") == (source, "width"), n["type"]
        assert source_of(wf, n, "height") == (source, "height"), n["type"]


# -------------------------------------------------------------------------------------------------------------
# End to end through the UI -> API conversion

def shrink(api: dict, frames: int, prefix: str) -> dict:
    """Small sizes for the CPU, what a user would change in the widgets; the size only where it is set."""
    for node in api.values():
        t, inputs = node["class_type"], node["inputs"]
        if t in SIZE_SOURCES:
            inputs.update(width=SIZE, height=SIZE)
        elif t == "StableAnimatorConditioning":
            inputs.update(frames=frames)
        elif t == "StableAnimatorSampler":
            inputs.update(steps=2)
        elif t == "StableAnimatorFaceAnalysisLoader":
            inputs.update(provider="CPU")
        elif t == "StableAnimatorDWPoseLoader":
            inputs.update(device="cpu")
        elif t == "LoadImage" and inputs["image"].startswith("stableanimator_reference"):
            inputs.update(image=FACE_REFERENCE)
        elif t == "SaveAnimatedWEBP":
            inputs.update(filename_prefix=prefix, lossless=True)
    return api


def saved_files(outputs: dict, host, suffix: str) -> list[Path]:
    files = []
    for out in outputs.values():
        for item in out.get("images", []):
            if item["filename"].endswith(suffix) and item.get("type") == "output":
                files.append(host.output_dir / item["subfolder"] / item["filename"])
    return files


def test_driving_video_workflow_runs(host, object_info):
    api = shrink(to_api(load(REPO / "workflows" / "stableanimator_driving_video.json"), object_info), 4, "e2e_driving")
    cond = next(v for v in api.values() if v["class_type"] == "StableAnimatorConditioning")
    assert isinstance(cond["inputs"]["width"], list), "the size reaches Conditioning by link"
    outputs = host.run(api, timeout=600)
    videos = saved_files(outputs, host, ".webp")
    assert len(videos) == 1, outputs
    decoded = e2e.webp_frames(videos[0])
    assert len(decoded) == 4
    for i, f in enumerate(decoded):
        assert f.shape == (SIZE, SIZE, 3), f.shape
        assert f.astype(float).std() > 1.0, f"frame {i} is flat (blank or NaN output)"


def test_size_set_twice_is_an_error(host, object_info):
    """A Conditioning size typed in by hand that differs from the pose images stops the run and says how to fix
    it; nothing is stretched silently."""
    api = shrink(to_api(load(REPO / "workflows" / "stableanimator_driving_video.json"), object_info), 2, "e2e_mismatch")
    cond = next(v for v in api.values() if v["class_type"] == "StableAnimatorConditioning")
    cond["inputs"].update(width=128, height=SIZE)
    with pytest.raises(PromptError) as err:
        host.run(api, timeout=600)
    message = str(err.value)
    assert "64x64" in message and "128x64" in message and "Render Poses" in message, message


def test_long_video_workflow_ships_64_frames(object_info):
    api = to_api(load(REPO / "workflows" / "stableanimator_long_video.json"), object_info)
    cond = next(v for v in api.values() if v["class_type"] == "StableAnimatorConditioning")
    windows = next(v for v in api.values() if "window" in v["inputs"])   # Apply's, or the sampler's before
    assert cond["inputs"]["frames"] >= 64
    assert windows["inputs"]["window"] == 16 and windows["inputs"]["overlap"] == 4
    poses = next(v for v in api.values() if v["class_type"] == "LoadImage" and "poses" in v["inputs"]["image"])
    assert len(e2e.webp_frames(EXAMPLE_INPUTS / poses["inputs"]["image"])) >= cond["inputs"]["frames"]
