"""Every shipped workflow (workflows/*.json, ComfyUI's UI format) end to end in the real host.

Each file is converted from UI to API format here, with the live host's /object_info (comfyui-autograph), never
from a hand-kept API copy. The converted prompt then gets small sizes (64x64, few frames, 2 steps), runs on the
host with small weights in the official formats (tests/fixtures/e2e_models.py), and its saved animated WEBP is
checked: the requested frame count and size (portrait, so a width/height swap fails), no blank or broken frames.
The basic workflow's sampled latent is also compared with an independent official-semantics computation."""
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
W, H = 64, 128   # portrait like the official 576x1024: a width/height swap changes every frame's shape
SIZE_SOURCES = {"StableAnimatorPoseRender", "StableAnimatorResizeImage"}
# the shipped example inputs the workflows name -> the test's files (the stand-in face detector sees their face)
TEST_INPUTS = {"stableanimator_reference.jpg": "reference.png", "stableanimator_poses.webp": "pose_frames.webp",
               "stableanimator_poses_long.webp": "pose_frames_long.webp", "stableanimator_driving.webp": "driving.webp"}


@pytest.fixture(scope="module")
def host(comfy_host, request):
    e2e.prepare_host(comfy_host, request)
    inp = comfy_host.input_dir
    install_example_inputs(inp)
    from PIL import Image
    Image.fromarray(e2e.reference_rgb()).save(inp / "reference.png")
    e2e.save_animation(inp / "pose_frames.webp", e2e.skeleton_frames(6))
    e2e.save_animation(inp / "pose_frames_long.webp", e2e.skeleton_frames(66))
    e2e.save_animation(inp / "driving.webp", e2e.person_frames(5))
    e2e.save_animation(inp / "pose_frames_portrait.webp", portrait_poses(4))
    return comfy_host


def portrait_poses(count):
    """Pose frames already at W x H, so no resize stands between the file and PoseNet."""
    frames = np.zeros((count, H, W, 3), np.uint8)
    for i in range(count):
        frames[i, 10 + 6 * i:90 + 6 * i, W // 2 - 1:W // 2 + 1] = (255, 0, 85)
        frames[i, 40 + 4 * i, 8:W - 8] = (0, 255, 170)
    return frames


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
# End-to-end runs

def shrink(api: dict, frames: int, prefix: str, window=16, overlap=4) -> dict:
    """Small sizes for the CPU: what a user would change in the widgets."""
    for node in api.values():
        t, inputs = node["class_type"], node["inputs"]
        if t == "StableAnimatorConditioning":
            inputs.update(width=W, height=H, frames=frames)
        elif t in SIZE_SOURCES or t == "StableAnimatorFaceBoxes":
            inputs.update(width=W, height=H)
        elif t == "LoadImage" and inputs["image"] in TEST_INPUTS:
            inputs.update(image=TEST_INPUTS[inputs["image"]])
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
        elif t == "StableAnimatorFaceEmbed":
            inputs.update(min_face_size=0)   # faces in 64x128 test frames are about 25 px
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
        assert f.shape == (H, W, 3), f.shape
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


def test_size_set_twice_is_an_error(host, object_info):
    """A Conditioning size typed in by hand that differs from the pose images stops the run and says how to fix
    it; nothing is stretched silently."""
    api = shrink(to_api(load(REPO / "workflows" / "stableanimator_driving_video.json"), object_info), 2, "e2e_mismatch")
    cond = next(v for v in api.values() if v["class_type"] == "StableAnimatorConditioning")
    cond["inputs"].update(width=128, height=H)
    with pytest.raises(PromptError) as err:
        host.run(api, timeout=600)
    message = str(err.value)
    assert f"{W}x{H}" in message and f"128x{H}" in message and "Render Poses" in message, message


def test_long_video_workflow_ships_64_frames(object_info):
    api = to_api(load(REPO / "workflows" / "stableanimator_long_video.json"), object_info)
    cond = next(v for v in api.values() if v["class_type"] == "StableAnimatorConditioning")
    apply = next(v for v in api.values() if v["class_type"] == "StableAnimatorApply")
    assert cond["inputs"]["frames"] >= 64
    assert apply["inputs"]["window"] == 16 and apply["inputs"]["overlap"] == 4


# -------------------------------------------------------------------------------------------------------------
# The basic workflow's numbers against an independent computation with the official semantics

def official_latent(cache, reference_png, poses_uint8, cond, samp, comfy_ready):
    """The official pipeline (facts §1.1) recomputed in this process from the same files: antelopev2 embedding of
    the BGR reference, diffusers' CLIP squash, Lanczos VAE input plus noise in [-1, 1] units, PoseNet on the pose
    frames, and the official loop on diffusers' UNet with the official ID processors: per frame CFG from two
    separate calls (uncond: zero context and latent, no pose), Euler on Karras sigmas, one window of all frames.
    The random draws follow the pack's conventions (seeded augmentation noise, ComfyUI's prepare_noise)."""
    import math

    import torch
    from PIL import Image

    from fixtures.official_reference import official_reference, reference_v, x0_from_v
    from fixtures.official_weights import TINY_UNET
    from stableanimator_core.checkpoint import read_state_dict
    from stableanimator_core.face.face_analysis import FaceAnalyzer
    from stableanimator_core.model.face_encoder import FaceEncoder
    from stableanimator_core.model.pose_net import PoseNet
    from fixtures.diffusers_reference import official_clip_input
    comfy_ready()
    import comfy.sample
    import comfy.sd
    import comfy.utils
    from comfy import clip_vision
    from diffusers import UNetSpatioTemporalConditionModel

    width, height, frames = cond["width"], cond["height"], cond["frames"]
    aug, seed = cond["augmentation"], cond["seed"]
    rgb = np.asarray(Image.open(reference_png).convert("RGB"))
    ref = torch.from_numpy(rgb).float()[None] / 255

    face = FaceAnalyzer(str(cache / "insightface"), providers=["CPUExecutionProvider"]).embed(ref).embedding
    sd = comfy.utils.load_torch_file(str(cache / "checkpoints" / e2e.SVD_FILE), safe_load=True)
    clip = clip_vision.load_clipvision_from_sd(sd, "conditioner.embedders.0.open_clip.model.visual.", True)
    vae = comfy.sd.VAE(sd=comfy.utils.state_dict_prefix_replace(sd, {"first_stage_model.": ""}, filter_keys=True))
    del sd
    squash = official_clip_input(ref)
    clip_embed = clip.encode_image(squash.clamp(0, 1), crop=False)["image_embeds"].float()[:, None]
    lanczos = np.asarray(Image.fromarray(rgb).resize((width, height), Image.LANCZOS)).astype(np.float32) / 255
    pm1 = torch.from_numpy(lanczos)[None] * 2 - 1
    pm1 = pm1 + aug * torch.randn((1, height, width, 3), generator=torch.Generator().manual_seed(seed))
    ref_latent = vae.encode((pm1 + 1) / 2).float()

    stable = read_state_dict(str(cache / "stableanimator" / "unet.pth"))
    adapter = {k: v for k, v in stable.items() if ".processor.id_to_" in k}
    unet = UNetSpatioTemporalConditionModel(**TINY_UNET).eval()
    unet.load_state_dict({k: v for k, v in stable.items() if k not in adapter})
    unet = official_reference(unet, adapter)
    pose_net = PoseNet(out_channels=TINY_UNET["block_out_channels"][0]).eval()
    pose_net.load_state_dict(read_state_dict(str(cache / "stableanimator" / "pose_net.pth")))
    face_sd = read_state_dict(str(cache / "stableanimator" / "face_encoder.pth"))
    encoder = FaceEncoder.from_state_dict_shapes(face_sd).eval()
    encoder.load_state_dict(face_sd)

    with torch.no_grad():
        context = torch.cat([clip_embed, encoder(face, clip_embed)], 1)
        poses = torch.from_numpy(poses_uint8[:frames]).float().permute(0, 3, 1, 2) / 127.5 - 1
        pose_features = pose_net(poses)
        time_ids = torch.tensor([[cond["fps"] - 1.0, float(cond["motion_bucket_id"]), aug]])
        steps, rho = samp["steps"], 7.0
        ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
        sigmas = [*((700.0 ** (1 / rho) + ramp * (0.002 ** (1 / rho) - 700.0 ** (1 / rho))) ** rho).tolist(), 0.0]
        noise = comfy.sample.prepare_noise(torch.zeros(frames, 4, height // 8, width // 8), samp["seed"])
        x = noise * math.sqrt(sigmas[0] ** 2 + 1)
        scale = torch.linspace(samp["cfg_min"], samp["cfg_max"], frames).view(-1, 1, 1, 1)
        for i in range(steps):
            v_u = reference_v(unet, x, sigmas[i], torch.zeros_like(ref_latent), torch.zeros_like(context), time_ids, None)
            v_c = reference_v(unet, x, sigmas[i], ref_latent, context, time_ids, pose_features)
            x0 = x0_from_v(x, sigmas[i], v_u + scale * (v_c - v_u))
            x = x + (sigmas[i + 1] - sigmas[i]) * (x - x0) / sigmas[i]
    return x / 0.18215


def test_basic_workflow_matches_the_official_pipeline(host, object_info, request):
    api = shrink(to_api(load(REPO / "workflows" / "stableanimator_basic.json"), object_info), 4, "e2e_official")
    poses = portrait_poses(4)
    for node in api.values():
        if node["class_type"] == "LoadImage" and node["inputs"]["image"] == "pose_frames.webp":
            node["inputs"]["image"] = "pose_frames_portrait.webp"
    samp_id = next(k for k, v in api.items() if v["class_type"] == "StableAnimatorSampler")
    cond = next(v["inputs"] for v in api.values() if v["class_type"] == "StableAnimatorConditioning")
    api["900"] = {"class_type": "SaveLatent", "inputs": {"samples": [samp_id, 0], "filename_prefix": "e2e_official/latent"}}
    outputs = host.run(api, timeout=600)
    check_video(outputs, host, 4)
    saved = outputs["900"]["latents"][0]
    from safetensors.torch import load_file
    got = load_file(str(host.output_dir / saved["subfolder"] / saved["filename"]))["latent_tensor"]
    assert got.shape == (4, 4, H // 8, W // 8)

    cache = e2e.build_cache(REPO / ".host" / "test_cache")
    want = official_latent(cache, host.input_dir / "reference.png", poses, cond, api[samp_id]["inputs"],
                           lambda: request.getfixturevalue("comfy_inprocess"))
    err = float((got - want).norm() / want.norm())
    print(f"\nbasic workflow vs official pipeline: relative error {err:.2e}")
    assert err < 1e-4, err
    # and the frames differ (the pose moves): a pipeline that ignored the pose would repeat one frame
    assert float((got[1:] - got[:1]).abs().mean()) > 1e-3
