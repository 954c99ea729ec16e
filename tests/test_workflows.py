"""Every shipped workflow (workflows/*.json, ComfyUI's UI format) end to end in the real host.

Each file is converted from UI to API format here, with the live host's /object_info (comfyui-autograph), never
from a hand-kept API copy. The converted prompt then gets small sizes (64x64, few frames, 2 steps), runs on the
host with small weights in the official formats (tests/fixtures/e2e_models.py), and its saved videos are read
back: the mp4 (h264 with an AAC track of the driving clip's sound, one video frame per pose frame, at the frame
rate Video Frames gave or the one set on Create Video) and, where shipped, the animated WEBP; the requested frame
count and size (portrait, so a width/height swap fails), no blank or broken frames.
The basic workflow's sampled latent is also compared with an independent official-semantics computation."""
import json
from pathlib import Path

import numpy as np
import pytest

from comfy_host import EXAMPLE_INPUTS, PromptError, install_example_inputs, ui_to_api as to_api
from fixtures import e2e_models as e2e
from fixtures.video_files import read_mp4, write_mp4

pytestmark = [pytest.mark.host, pytest.mark.filterwarnings("ignore::FutureWarning")]
REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((REPO / "workflows").glob("*.json"))
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
W, H = 64, 128   # portrait like the official 576x1024: a width/height swap changes every frame's shape
SIZE_SOURCES = {"StableAnimatorPoseRender", "StableAnimatorResizeImage", "StableAnimatorVideoFrames"}
DRIVING_FPS = 10          # the test's driving mp4
DRIVING_FRAMES = 5
POSE_WORKFLOW_FPS = 8.0   # what the pose-frame workflows' Create Video is set to (scripts/build_workflows.py)
# the shipped example inputs the workflows name -> the test's files (the stand-in face detector sees their face)
TEST_INPUTS = {"stableanimator_reference.jpg": "reference.png", "stableanimator_poses.webp": "pose_frames.webp",
               "stableanimator_poses_long.webp": "pose_frames_long.webp", "stableanimator_driving.mp4": "driving.mp4"}


@pytest.fixture(scope="module")
def host(comfy_host, request):
    e2e.prepare_host(comfy_host, request)
    inp = comfy_host.input_dir
    install_example_inputs(inp)
    from PIL import Image
    Image.fromarray(e2e.reference_rgb()).save(inp / "reference.png")
    e2e.save_animation(inp / "pose_frames.webp", e2e.skeleton_frames(6))
    e2e.save_animation(inp / "pose_frames_long.webp", e2e.skeleton_frames(66))
    write_mp4(inp / "driving.mp4", e2e.person_frames(DRIVING_FRAMES, height=H, width=W), DRIVING_FPS)
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


# Every file each workflow needs, with its model folder (README's table)
# (the .onnx files, antelopev2 and DWPose, are left out: ComfyUI 0.3.75 never lists .onnx in a model folder for the
# frontend, so 1.32.9 would report them missing on every load; the Read me note names them)
NEEDED = {"checkpoints": {"svd_xt.safetensors"},
          "stableanimator": {"unet.pth", "pose_net.pth", "face_encoder.pth"}}
NEEDED_DWPOSE = {}
NEEDED_HJB = {"stableanimator": {"glintr100_torch.pth"}}


def needed_files(wf) -> set:
    parts = [NEEDED]
    if nodes_of(wf, "StableAnimatorDWPoseLoader"):
        parts.append(NEEDED_DWPOSE)
    if nodes_of(wf, "StableAnimatorArcFaceLoader"):
        parts.append(NEEDED_HJB)
    return {(d, name) for part in parts for d, names in part.items() for name in names}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_names_what_ships(path):
    """Load Image / Load Video name files of assets/inputs (copied into input/ once, README), the template browser
    finds a thumbnail, and the workflow lists every model file it needs with its folder and the address it is
    published at (the frontend's missing-model dialog reads them); each loader lists the files its widgets name."""
    wf = load(path)
    shipped = {f.name for f in EXAMPLE_INPUTS.iterdir()}
    for n in nodes_of(wf, "LoadImage") + nodes_of(wf, "LoadVideo"):
        assert n["widgets_values"][0] in shipped, (n.get("title"), n["widgets_values"][0], shipped)
    assert path.with_suffix(".jpg").is_file(), "no template thumbnail"
    listed = wf.get("models") or []
    assert {(m["directory"], m["name"]) for m in listed} == needed_files(wf), listed
    for m in listed:
        # the frontend offers downloads only from these hosts (MissingModelsWarning); the file is the one named
        assert m["url"].startswith("https://huggingface.co/") and m["url"].endswith("/" + m["name"].split("/")[-1]), m
    for loader in nodes_of(wf, "StableAnimatorModelLoader"):
        models = loader["properties"].get("models")
        assert models, f"{loader['type']}: the missing-model dialog gets nothing"
        assert {m["name"] for m in models} == {v for v in loader["widgets_values"] if isinstance(v, str)
                                                and v.endswith((".safetensors", ".pth"))}, models
        for m in models:
            assert m in listed, m


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_video_size_is_set_in_one_place(path):
    """The video size is typed in on one node; every other node that has a size (Render Poses, Resize Images,
    Conditioning, Face Boxes) takes it by link from there, so the sizes cannot disagree."""
    wf = load(path)
    typed = [n for n in wf["nodes"] if n["type"] in SIZE_SOURCES and source_of(wf, n, "width") is None]
    assert len(typed) == 1, [n["type"] for n in typed]
    source = typed[0]
    sized = [n for n in wf["nodes"] if n["type"] in SIZE_SOURCES | {"StableAnimatorConditioning",
                                                                     "StableAnimatorFaceBoxes"}]
    for n in sized:
        if n is source:
            continue
        for side in ("width", "height"):
            src = source_of(wf, n, side)
            assert src is not None, f"{n['type']}.{side} is typed in, not linked"
            while src[0] is not source:   # through Render Poses / Resize Images to the source
                src = source_of(wf, src[0], side)
                assert src is not None, f"{n['type']}.{side} does not come from {source['type']}"
    for n in nodes_of(wf, "StableAnimatorConditioning"):
        pose = source_of(wf, n, "pose_images")[0]
        assert pose["type"] in SIZE_SOURCES, pose["type"]


def test_driving_workflows_read_a_video_and_keep_the_photo_undistorted():
    """Load Video -> Video Frames (size from the clip's aspect) -> poses; the photo reaches Conditioning through
    Resize Images with crop or pad at Video Frames' size (never stretched by default); Create Video takes Video
    Frames' fps and audio."""
    for name in ("stableanimator_driving_video.json", "stableanimator_hjb_identity.json"):
        wf = load(REPO / "workflows" / name)
        frames = nodes_of(wf, "StableAnimatorVideoFrames")[0]
        assert source_of(wf, frames, "video")[0]["type"] == "LoadVideo"
        assert frames["widgets_values"][2] == "follow video aspect", frames["widgets_values"]
        cond = nodes_of(wf, "StableAnimatorConditioning")[0]
        ref, _ = source_of(wf, cond, "reference")
        assert ref["type"] == "StableAnimatorResizeImage" and ref["widgets_values"][-1] in ("crop", "pad"), ref
        assert source_of(wf, ref, "width") == (frames, "width")
        create = nodes_of(wf, "CreateVideo")[0]
        assert source_of(wf, create, "fps") == (frames, "fps") and source_of(wf, create, "audio") == (frames, "audio")
        save = nodes_of(wf, "SaveVideo")[0]
        assert save["widgets_values"][1:] == ["mp4", "h264"], save["widgets_values"]



def test_hjb_reference_is_the_image_face_embed_saw():
    """HJB crops the reference at Face Embed's box, which is in the image Face Embed saw: the photo as loaded, not
    the cropped copy Conditioning gets (that box would land beside the face)."""
    wf = load(REPO / "workflows" / "stableanimator_hjb_identity.json")
    hjb = nodes_of(wf, "StableAnimatorHJB")[0]
    embed, _ = source_of(wf, hjb, "reference_face")
    assert source_of(wf, hjb, "reference") == source_of(wf, embed, "images")
    assert source_of(wf, hjb, "reference")[0]["type"] == "LoadImage"

# -------------------------------------------------------------------------------------------------------------
# End-to-end runs

def shrink(api: dict, frames: int, prefix: str, window=16, overlap=4) -> dict:
    """Small sizes for the CPU: what a user would change in the widgets."""
    for node in api.values():
        t, inputs = node["class_type"], node["inputs"]
        if t in SIZE_SOURCES or t in ("StableAnimatorFaceBoxes", "StableAnimatorConditioning"):
            # typed-in sizes only: a linked size follows its source
            inputs.update({k: v for k, v in (("width", W), ("height", H)) if not isinstance(inputs.get(k), list)})
            if t == "StableAnimatorConditioning":
                inputs.update(frames=frames)
            if t == "StableAnimatorVideoFrames":   # read only the frames generated: the sound follows them
                inputs.update(frame_cap=frames)
        elif t == "LoadImage" and inputs["image"] in TEST_INPUTS:
            inputs.update(image=TEST_INPUTS[inputs["image"]])
        elif t == "LoadVideo" and inputs["file"] in TEST_INPUTS:
            inputs.update(file=TEST_INPUTS[inputs["file"]])
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
        elif t == "SaveVideo":
            inputs.update(filename_prefix=f"video/{prefix}")
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


def check_mp4(outputs, host, frames, fps, audio: bool):
    """The mp4 Save Video wrote: h264, one frame per pose frame at `fps`, and (with `audio`) a sound track as
    long as the frames (AAC pads up to one 1024-sample frame at each end)."""
    videos = saved_files(outputs, host, ".mp4")
    assert len(videos) == 1, outputs
    got = read_mp4(videos[0])
    decoded, got_fps, codec, seconds = got["frames"], got["fps"], got["codec"], got["audio_seconds"]
    assert codec == "h264", codec
    assert len(decoded) == frames and abs(got_fps - fps) < 1e-3, (len(decoded), got_fps, frames, fps)
    for f in decoded:
        assert f.shape == (H, W, 3), f.shape
        assert f.astype(float).std() > 1.0
    if audio:
        assert seconds is not None and got["audio_codec"] == "aac", "the mp4 has no audio stream"
        assert abs(seconds - frames / fps) < 0.15, (seconds, frames / fps)
    return decoded


def check_video(outputs, host, frames, webp=True, fps=POSE_WORKFLOW_FPS, audio=False):
    check_mp4(outputs, host, frames, fps, audio)
    if not webp:
        assert not saved_files(outputs, host, ".webp"), outputs
        return None
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
    # frames 0: every driving frame, at the clip's own rate, with its sound
    check_video(outputs, host, DRIVING_FRAMES, webp=False, fps=DRIVING_FPS, audio=True)


def test_hjb_identity_workflow_runs(host, object_info):
    api, outputs = run_workflow(host, object_info, "stableanimator_hjb_identity.json", frames=3)
    check_video(outputs, host, 3, webp=False, fps=DRIVING_FPS, audio=True)
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
    cond = {**cond, "width": W, "height": H}   # linked from Resize Images, which shrink() set to W x H
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
