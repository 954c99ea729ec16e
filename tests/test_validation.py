"""The shared input checks (nodes/validation.py) on the pack's own nodes, in-process: what ComfyUI 0.3.75 leaves
unchecked for V3 nodes (combo values, ranges of validated inputs, NaN numbers, weight names) is refused with the
node and input named, and the defaults every node ships with pass."""
from importlib import import_module

import pytest
import torch

PENDING = set()   # nodes that do not go through check_inputs yet (none)


@pytest.fixture(scope="module")
def mods(pack):
    names = ["validation", "model_nodes", "conditioning", "images", "face", "pose", "sampling", "hjb"]
    return {n: import_module(f"{pack.__name__}.nodes.{n}") for n in names} | {
        "errors": import_module(f"{pack.__name__}.stableanimator_core.errors"),
        "registry": import_module(f"{pack.__name__}.nodes")}


def all_nodes(mods):
    return [node for module in mods["registry"].NODE_MODULES for node in module.NODES]


def defaults(node) -> dict:
    from comfy_api.latest import io
    values = {}
    for inp in node.define_schema().inputs:
        if isinstance(inp, io.Combo.Input):
            values[inp.id] = inp.default if inp.default is not None else (inp.options or [None])[0]
        elif isinstance(inp, (io.Int.Input, io.Float.Input, io.Boolean.Input, io.String.Input)):
            values[inp.id] = inp.default
        else:
            values[inp.id] = None   # a link: ComfyUI passes None at validation
    return values


def test_every_node_of_the_pack_validates_all_its_inputs(mods):
    """validate_inputs takes **kwargs (so ComfyUI hands over every value and the pack's check owns all ranges)
    and goes through check_inputs: a value out of range is refused by the pack, not left to ComfyUI."""
    import inspect
    checked = []
    for node in all_nodes(mods):
        node_id = node.define_schema().node_id
        if node_id in PENDING:
            continue
        fn = node.__dict__.get("validate_inputs")
        assert fn is not None, f"{node_id} has no validate_inputs"
        spec = inspect.getfullargspec(fn.__func__)
        assert spec.varkw is not None, f"{node_id}.validate_inputs does not take **kwargs"
        assert "check_inputs" in inspect.getsource(fn.__func__), node_id
        checked.append(node_id)
    assert len(checked) == 18, checked   # 16 + Video Frames (issue 17) + Animator Noise (issue 18)


def test_shipped_defaults_pass_where_their_files_exist(mods):
    """Defaults of nodes without files or folders pass (loaders need their files: see the host catalogue)."""
    for module in ("conditioning", "images", "pose", "face", "sampling", "model_nodes", "hjb"):
        for node in mods[module].NODES:
            name = node.define_schema().node_id
            if name in PENDING or "Loader" in name:
                continue
            assert node.validate_inputs(**defaults(node)) is True, name


def expect(mods, node, fragment, **values):
    with pytest.raises(mods["errors"].StableAnimatorError) as err:
        node.validate_inputs(**{**defaults(node), **values})
    message = str(err.value)
    assert fragment in message, message
    assert message.startswith(node.define_schema().display_name + ": "), message   # the node is named
    return message


def test_combos_ranges_and_nan_numbers_are_refused(mods):
    resize = mods["images"].StableAnimatorResizeImage
    expect(mods, resize, "method 'sinc' is not one of ['lanczos (official)'", method="sinc")
    expect(mods, resize, "width = 4096 is above its maximum 2048", width=4096)
    expect(mods, resize, "multiple of 64", width=100)
    cond = mods["conditioning"].StableAnimatorConditioning
    expect(mods, cond, "frames = -1 is below its minimum 0", frames=-1)
    expect(mods, cond, "augmentation is nan; enter a finite number", augmentation=float("nan"))
    expect(mods, cond, "augmentation is inf", augmentation=float("inf"))
    embed = mods["face"].StableAnimatorFaceEmbed
    expect(mods, embed, "channel_order 'BGR' is not one of", channel_order="BGR")
    expect(mods, embed, "min_face_size = -1 is below its minimum 0", min_face_size=-1)
    render = mods["pose"].StableAnimatorPoseRender
    expect(mods, render, "would take 7.2 GB per frame", width=8, height=4096)
    # several problems are reported together
    message = expect(mods, resize, "method 'x'", method="x", width=-64)
    assert "width = -64 is below its minimum 64" in message


def test_linked_values_are_left_to_run_time(mods):
    cond = mods["conditioning"].StableAnimatorConditioning
    assert cond.validate_inputs(**{**defaults(cond), "width": None, "frames": None}) is True


def test_old_labels_pass_as_aliases(mods):
    embed = mods["face"].StableAnimatorFaceEmbed
    assert embed.validate_inputs(**{**defaults(embed), "on_missing": "zero embedding (official)"}) is True
    assert mods["validation"].canonical(embed, "on_missing", "zero embedding (official)") == "zero embedding (no identity)"
    dw = mods["pose"].StableAnimatorDWPoseLoader
    assert mods["validation"].canonical(dw, "device", "cpu") == "CPU"


@pytest.mark.parametrize("name", ["../checkpoints/svd_xt.safetensors", "..\\x.pth", "/etc/passwd", "C:/models/x.pth",
                                  "sub/../../x.pth", ""])
def test_weight_names_stay_in_their_folder(mods, name):
    problem = mods["validation"].weight_problem("unet", "stableanimator", name)
    assert problem and ("outside the stableanimator model folder" in problem or "no file is chosen" in problem), problem


def test_missing_weight_names_its_folder_and_source(mods):
    problem = mods["validation"].weight_problem("unet", "stableanimator", "not_there.pth")
    assert "'not_there.pth' was not found in the stableanimator model folder" in problem
    assert "huggingface.co/FrancisRing/StableAnimator" in problem


def test_loader_refuses_fp8_and_traversal_before_loading(mods, tmp_path):
    loader = mods["model_nodes"].StableAnimatorModelLoader
    values = {"svd_checkpoint": "svd_xt.safetensors", "unet": "../unet.pth", "pose_net": "pose_net.pth",
              "face_encoder": "face_encoder.pth", "dtype": "fp8"}
    with pytest.raises(mods["errors"].StableAnimatorError) as err:
        loader.validate_inputs(**values)
    message = str(err.value)
    assert "dtype 'fp8' is not one of ['auto', 'fp32', 'fp16', 'bf16', 'fp8_e4m3fn', 'fp8_e5m2']" in message
    assert "unet '../unet.pth' points outside the stableanimator model folder" in message


def test_nan_and_inf_images_are_refused_with_node_and_input(mods):
    cond = mods["conditioning"].StableAnimatorConditioning
    finite = mods["validation"].require_finite
    image = torch.rand(3, 8, 8, 3)
    assert finite(cond, "reference", image) is image
    image[1, 2, 3, 0] = float("nan")
    image[2, 0, 0] = float("inf")
    with pytest.raises(mods["errors"].StableAnimatorError) as err:
        finite(cond, "pose_images", image)
    assert str(err.value).startswith("Animator Conditioning: input 'pose_images' has NaN or infinite values in "
                                     "2 of 192 pixels, in frame(s) 1, 2.")
    mask = torch.zeros(2, 4, 4)
    mask[0, 0, 0] = float("-inf")
    with pytest.raises(mods["errors"].StableAnimatorError, match="in 1 of 32 values, in frame"):
        finite(cond, "face_masks", mask)


def test_nan_latent_into_decode_names_the_sampler_not_the_vae(mods):
    decode = mods["sampling"].StableAnimatorDecode
    latent = torch.zeros(3, 4, 2, 2)
    latent[1, 0, 0, 0] = float("nan")
    with pytest.raises(mods["errors"].StableAnimatorError) as err:
        mods["validation"].require_finite(decode, "latent", latent, kind="LATENT")
    message = str(err.value)
    assert message.startswith("Decode Video: input 'latent' has NaN or infinite values in 1 of 48 values, in frame(s) 1.")
    assert "The sampler that made this latent" in message and "not the VAE" in message
    assert "upscaler" not in message


def test_provider_choices(mods, monkeypatch):
    providers = import_module(mods["registry"].__name__.rsplit(".", 1)[0] + ".stableanimator_core.onnx_providers")
    import onnxruntime
    loader = mods["face"].StableAnimatorFaceAnalysisLoader
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["DmlExecutionProvider", "CPUExecutionProvider"])
    assert providers.providers_for("DirectML") == ["DmlExecutionProvider", "CPUExecutionProvider"]
    assert providers.default_providers() == ["DmlExecutionProvider", "CPUExecutionProvider"]   # auto takes DirectML
    assert "CUDA needs onnxruntime's CUDAExecutionProvider" in providers.provider_problem("CUDA")
    assert "it offers CPU, DirectML" in providers.provider_problem("CUDA")
    with pytest.raises(mods["errors"].StableAnimatorError, match="det_size 650 is not a multiple of 32"):
        loader.validate_inputs(provider="auto", det_size=650)


def test_renamed_options_point_at_current_options(mods):
    """Every old label maps to a label the node offers now, and the old one is no longer offered."""
    from stableanimator_core.renamed_options import RENAMED_OPTIONS, migrate_workflow
    nodes = {n.define_schema().node_id: n for n in all_nodes(mods)}
    for node_id, inputs in RENAMED_OPTIONS.items():
        schema = {i.id: i for i in nodes[node_id].define_schema().inputs}
        for name, table in inputs.items():
            for old, new in table.items():
                assert new in schema[name].options and old not in schema[name].options, (node_id, name, old)
    ui = {"nodes": [{"type": "StableAnimatorFaceEmbed", "widgets_values": ["BGR (training)", "zero embedding (official)"]},
                    {"type": "LoadImage", "widgets_values": ["cpu", "image"]}]}
    out = migrate_workflow(ui)
    assert out["nodes"][0]["widgets_values"] == ["BGR (training)", "zero embedding (no identity)"]
    assert out["nodes"][1]["widgets_values"] == ["cpu", "image"]   # other nodes untouched
    assert ui["nodes"][0]["widgets_values"][1] == "zero embedding (official)"   # a copy


def test_sampling_nodes_refuse_unknown_combos_and_windows(mods):
    sampler = mods["sampling"].StableAnimatorSampler
    expect(mods, sampler, "sampler_name 'euler_fake' is not one of", sampler_name="euler_fake")
    expect(mods, sampler, "scheduler 'fancy' is not one of", scheduler="fancy")
    expect(mods, sampler, "denoise = 1.5 is above its maximum 1.0", denoise=1.5)
    apply = mods["model_nodes"].StableAnimatorApply
    expect(mods, apply, "overlap (16) must be smaller than window (16)", window=16, overlap=16)
    expect(mods, apply, "overlap (0) must be at least 1", window=8, overlap=0)
    hjb = mods["hjb"].StableAnimatorHJB
    expect(mods, hjb, "end_step (2) is before start_step (5)", start_step=5, end_step=2)
