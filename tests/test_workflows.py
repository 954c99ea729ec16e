"""Every shipped workflow (workflows/*.json, ComfyUI's UI format) end to end in the real host.

Each file is converted from UI to API format here, with the live host's /object_info (comfyui-autograph), never
from a hand-kept API copy. The converted prompt then gets small sizes (64x64, few frames, 2 steps), runs on the
host with small weights in the official formats (tests/fixtures/e2e_models.py), and its saved animated WEBP is
checked: the requested frame count and size, no blank or broken frames."""
import json
from pathlib import Path

import numpy as np
import pytest

from comfy_host import ui_to_api as to_api
from fixtures import e2e_models as e2e

pytestmark = [pytest.mark.host, pytest.mark.filterwarnings("ignore::FutureWarning")]
REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
SIZE = 64


@pytest.fixture(scope="module")
def host(comfy_host, request):
    e2e.prepare_host(comfy_host, request)
    inp = comfy_host.input_dir
    from PIL import Image
    Image.fromarray(e2e.reference_rgb()).save(inp / "reference.png")
    e2e.save_animation(inp / "pose_frames.webp", e2e.skeleton_frames(6))
    e2e.save_animation(inp / "pose_frames_long.webp", e2e.skeleton_frames(66))
    e2e.save_animation(inp / "driving.webp", e2e.person_frames(5))
    return comfy_host


@pytest.fixture(scope="module")
def object_info(host):
    return host.object_info()   # after the inputs and weights are in place: combo lists hold them


def load(path):
    return json.loads(Path(path).read_text())




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
    assert any(n["type"] == "Note" for n in nodes.values()), "every workflow explains itself in a Note"
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


# -------------------------------------------------------------------------------------------------------------
# End-to-end runs

def shrink(api: dict, frames: int, prefix: str, window=16, overlap=4) -> dict:
    """Small sizes for the CPU: what a user would change in the widgets."""
    for node in api.values():
        t, inputs = node["class_type"], node["inputs"]
        if t == "StableAnimatorConditioning":
            inputs.update(width=SIZE, height=SIZE, frames=frames)
        elif t in ("StableAnimatorPoseRender", "StableAnimatorFaceBoxes"):
            inputs.update(width=SIZE, height=SIZE)
        elif t == "StableAnimatorApply":
            inputs.update(window=window, overlap=overlap)
        elif t == "StableAnimatorSampler":
            inputs.update(steps=2)
        elif t == "StableAnimatorHJB":
            inputs.update(start_step=0, end_step=2, iterations=1, context=2)
        elif t == "StableAnimatorDecode":
            inputs.update(chunk=8)
        elif t == "StableAnimatorFaceAnalysisLoader":
            inputs.update(provider="CPU")
        elif t == "StableAnimatorDWPoseLoader":
            inputs.update(device="cpu")
        elif t == "SaveAnimatedWEBP":
            inputs.update(filename_prefix=prefix, lossless=True)
        elif t == "SaveImage":
            inputs.update(filename_prefix=prefix + "_image")
    return api


def saved_files(outputs: dict, host, suffix: str) -> list[Path]:
    files = []
    for out in outputs.values():
        for item in out.get("images", []):
            if item["filename"].endswith(suffix) and item.get("type") == "output":
                files.append(host.output_dir / item["subfolder"] / item["filename"])
    return files


def check_video(outputs, host, frames):
    videos = saved_files(outputs, host, ".webp")
    assert len(videos) == 1, outputs
    decoded = e2e.webp_frames(videos[0])
    assert len(decoded) == frames
    for i, f in enumerate(decoded):
        assert f.shape == (SIZE, SIZE, 3), f.shape
        assert np.isfinite(f).all()
        assert f.astype(float).std() > 1.0, f"frame {i} is flat (blank or NaN output)"
    return decoded


def run_workflow(host, object_info, name, frames, **kw):
    api = shrink(to_api(load(REPO / "workflows" / name), object_info), frames, f"e2e_{Path(name).stem}", **kw)
    return api, host.run(api, timeout=600)


def test_basic_workflow_runs(host, object_info):
    _, outputs = run_workflow(host, object_info, "stableanimator_basic.json", frames=4)
    check_video(outputs, host, 4)


def test_driving_video_workflow_runs(host, object_info):
    _, outputs = run_workflow(host, object_info, "stableanimator_driving_video.json", frames=0)
    check_video(outputs, host, 5)   # frames 0: every driving frame


def test_hjb_identity_workflow_runs(host, object_info):
    api, outputs = run_workflow(host, object_info, "stableanimator_hjb_identity.json", frames=3)
    check_video(outputs, host, 3)
    sim = next(k for k, v in api.items() if v["class_type"] == "StableAnimatorIdentitySimilarity")
    assert outputs[sim]["text"][0].startswith("CSIM"), outputs[sim]
    plots = saved_files(outputs, host, ".png")
    assert plots, "the CSIM plot was not saved"


def test_long_video_workflow_runs_in_windows(host, object_info):
    # 20 frames in windows of 8 with overlap 2: three windows, the same code path as 64 frames in 16s
    api, outputs = run_workflow(host, object_info, "stableanimator_long_video.json", frames=20, window=8, overlap=2)
    check_video(outputs, host, 20)


def test_long_video_workflow_ships_64_frames(object_info):
    api = to_api(load(REPO / "workflows" / "stableanimator_long_video.json"), object_info)
    cond = next(v for v in api.values() if v["class_type"] == "StableAnimatorConditioning")
    apply = next(v for v in api.values() if v["class_type"] == "StableAnimatorApply")
    assert cond["inputs"]["frames"] >= 64
    assert apply["inputs"]["window"] == 16 and apply["inputs"]["overlap"] == 4
