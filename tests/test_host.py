"""The pack inside a real, headless ComfyUI: it loads, lists its nodes, runs a prompt, and reports bad input."""
import ast
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from comfy_host import PromptError
from fixtures import e2e_models as e2e

pytestmark = pytest.mark.host
REPO = Path(__file__).resolve().parent.parent


def pack_node_ids():
    """Every node id the pack's modules declare, read from the source (no ComfyUI import needed)."""
    ids = set()
    for path in (REPO / "nodes").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "node_id" and isinstance(node.value, ast.Constant):
                ids.add(node.value.value)
    return ids


def test_pack_loads_without_import_error(comfy_host):
    log = comfy_host.log()
    timings = log.split("Import times for custom nodes:")[-1].split("WARNING")[0]
    ours = [line for line in timings.splitlines() if "ComfyUI-StableAnimator" in line]
    assert len(ours) == 1 and "IMPORT FAILED" not in ours[0], log[-3000:]


def test_object_info_lists_every_node_with_inputs_outputs_and_tooltips(comfy_host):
    info = comfy_host.object_info()
    ids = pack_node_ids()
    assert ids, "no node ids found in nodes/"
    for node_id in ids:
        assert node_id in info, f"{node_id} missing from /object_info"
        node = info[node_id]
        assert node["output"], node_id
        assert node["description"], f"{node_id} has no description"
        assert node["category"].startswith("StableAnimator")
        for section in ("required", "optional"):
            for name, spec in node["input"].get(section, {}).items():
                assert len(spec) > 1 and spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"


def test_model_folders_are_registered(comfy_host):
    """The pack's folders reach ComfyUI's model lists, including the extra_model_paths root the tests use."""
    (comfy_host.models_dir / "stableanimator" / "probe.safetensors").write_bytes(b"")
    names = comfy_host.get("/models/stableanimator")
    assert "probe.safetensors" in names


def write_image(path, rgb):
    Image.fromarray(rgb).save(path)
    return path.name


def resize_prompt(image_name, width, height, **method):
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": e2e.resize_node(["1", 0], width, height, **method),
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "sa_resize"}},
    }


def test_prompt_runs_through_a_pack_node_and_writes_output(comfy_host):
    rgb = np.zeros((40, 70, 3), np.uint8)
    rgb[:, :35] = (255, 0, 0)   # left half red, right half blue: a stretch keeps the halves
    rgb[:, 35:] = (0, 0, 255)
    name = write_image(comfy_host.input_dir / "half.png", rgb)
    outputs = comfy_host.run(resize_prompt(name, 128, 64))
    saved = outputs["3"]["images"][0]
    out = np.asarray(Image.open(comfy_host.output_dir / saved["subfolder"] / saved["filename"]))
    assert out.shape == (64, 128, 3)
    assert tuple(out[32, 10]) == (255, 0, 0) and tuple(out[32, 118]) == (0, 0, 255)


def test_bad_value_is_a_validation_error_and_server_keeps_serving(comfy_host):
    name = write_image(comfy_host.input_dir / "small.png", np.full((16, 16, 3), 128, np.uint8))
    with pytest.raises(PromptError) as err:
        comfy_host.queue(resize_prompt(name, 100, 64))   # 100 is not a multiple of 64
    body = err.value.body
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    messages = str(body["node_errors"])
    assert "multiple of 64" in messages and "128x64" in messages

    with pytest.raises(PromptError) as err:
        comfy_host.queue(resize_prompt(name, 64, 64, method="sinc"))   # not in the combo list
    assert "'sinc' is not one of" in str(err.value.body["node_errors"])

    outputs = comfy_host.run(resize_prompt(name, 64, 64))   # the next prompt still runs
    assert outputs["3"]["images"]
