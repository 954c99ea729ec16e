"""A catalogue of bad inputs, each queued on the real host: the problem comes back through ComfyUI's own error
reporting (a validation error body, or an execution_error in the history) with a message that names the problem
and the fix, and the server then still runs a good prompt. Grayscale and RGBA images and driving frames without a
person are not errors: they must work.

Run with -s to see the catalogue: every entry prints the exact message a user sees."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from comfy_host import PromptError
from fixtures import e2e_models as e2e
from fixtures.catalogue import failed_prompt
from fixtures.face_models import paint_face, textured_image

pytestmark = [pytest.mark.host, pytest.mark.filterwarnings("ignore::FutureWarning")]
W, H = 64, 128   # portrait, as the official 576x1024: generation tests fail on a width/height swap
SIZE = 256       # keypoint renders: big enough that the thin official sticks cover whole pixels
SEEDS = iter(range(1000, 100000))


@pytest.fixture(scope="module")
def host(comfy_host, request):
    e2e.prepare_host(comfy_host, request)
    inp = comfy_host.input_dir
    Image.fromarray(e2e.reference_rgb()).save(inp / "bad_ref.png")
    Image.fromarray(e2e.no_face_rgb()).save(inp / "bad_noface.png")
    e2e.save_animation(inp / "bad_poses.webp", e2e.skeleton_frames(3))
    # grayscale files (LoadImage gives gray RGB) and an RGBA reference (alpha joined back in the graph)
    Image.fromarray(e2e.reference_rgb()).convert("L").save(inp / "bad_ref_gray.png")
    frames = [Image.fromarray(f).convert("L") for f in e2e.skeleton_frames(3)]
    frames[0].save(inp / "bad_poses_gray.webp", save_all=True, append_images=frames[1:], lossless=True)
    rgba = np.dstack([e2e.reference_rgb(), np.full((640, 640), 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(inp / "bad_ref_rgba.png")
    drv = np.stack([e2e.person_frames(1)[0], e2e.empty_frame(), e2e.person_frames(2)[1]])
    e2e.save_animation(inp / "bad_driving.webp", drv)
    # a 64x64 photo whose face the stand-in detector finds at 13x14 px (it sees the image scaled by 10, where the
    # 4x4 red patch fills one 32-px cell); and a group photo with three large and three small faces
    tiny = textured_image(8, 64, 64)
    tiny[12:16, 28:32] = (255, 0, 0)
    Image.fromarray(tiny).save(inp / "bad_tiny_face.png")
    group = textured_image(9)
    for cell in ((2, 3), (9, 3), (16, 3)):
        paint_face(group, "red", *cell)
    for cell in ((4, 30), (16, 30), (28, 30)):
        paint_face(group, "green", *cell)
    Image.fromarray(group).save(inp / "bad_group.png")
    return comfy_host


def base_prompt(ref="bad_ref.png", poses="bad_poses.webp", frames=2, width=W, height=H, **loader):
    """Reference + pose frames -> loader, face embed, conditioning -> SaveLatent (no sampling: cheap)."""
    files = {"svd_checkpoint": "svd_xt.safetensors", "unet": "unet.pth", "pose_net": "pose_net.pth",
             "face_encoder": "face_encoder.pth", **loader}
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": ref}},
        "2": {"class_type": "LoadImage", "inputs": {"image": poses}},
        "3": {"class_type": "StableAnimatorModelLoader", "inputs": {"dtype": "auto", **files}},
        "4": {"class_type": "StableAnimatorFaceAnalysisLoader", "inputs": {"provider": "CPU", "det_size": 640}},
        "5": {"class_type": "StableAnimatorFaceEmbed", "inputs": {"face_analysis": ["4", 0], "images": ["1", 0],
                                                                  "channel_order": "BGR (training)", "on_missing": "error"}},
        "6": {"class_type": "StableAnimatorConditioning", "inputs": {
            "clip_vision": ["3", 1], "vae": ["3", 2], "animator": ["3", 3], "face_embed": ["5", 0],
            "reference": ["1", 0], "pose_images": ["30", 0], "width": width, "height": height, "frames": frames,
            "fps": 7, "motion_bucket_id": 127, "augmentation": 0.02, "seed": next(SEEDS)}},
        "7": {"class_type": "SaveLatent", "inputs": {"samples": ["6", 2], "filename_prefix": "bad_inputs/latent"}},
        # loaded pose frames reach the video size the way a user's do: through Resize Images
        "30": e2e.resize_node(["2", 0], width, height),
    }


def add_generation(prompt, steps=1, prefix="bad_inputs/video"):
    """Apply -> StableAnimator Sampler -> Decode -> SaveAnimatedWEBP on top of base_prompt."""
    prompt.update({
        "8": {"class_type": "StableAnimatorApply", "inputs": {"model": ["3", 0], "animator": ["3", 3],
                                                              "id_strength": 1.0, "pose_strength": 1.0,
                                                              "window": 16, "overlap": 4}},
        "9": {"class_type": "StableAnimatorSampler", "inputs": {
            "model": ["8", 0], "positive": ["6", 0], "negative": ["6", 1], "latent": ["6", 2], "seed": next(SEEDS),
            "steps": steps, "cfg_min": 1.0, "cfg_max": 2.5, "sampler_name": "euler", "scheduler": "karras",
            "denoise": 1.0}},
        "10": {"class_type": "StableAnimatorDecode", "inputs": {"vae": ["3", 2], "latent": ["9", 0], "chunk": 4}},
        "11": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["10", 0], "filename_prefix": prefix, "fps": 7.0,
                                                            "lossless": True, "quality": 90, "method": "default"}},
    })
    return prompt


def expect_error(host, prompt, *fragments, title, before_running=False):
    """The prompt fails with a message holding every fragment; before_running: it is refused at validation
    (HTTP 400 with node errors), so no model was loaded and nothing ran."""
    message = failed_prompt(host, prompt, *fragments, title=title, before_running=before_running).user_message()
    still_serves(host)
    return message


def log_since(host, start: int) -> str:
    return host.log()[start:]


def still_serves(host):
    outputs = host.run(base_prompt(), timeout=300)
    assert outputs["7"] is not None


# ---------------------------------------------------------------------------------------------------------------
# Weight files

def test_missing_weight_not_in_list(host):
    expect_error(host, base_prompt(unet="unet_missing.pth"), "unet_missing.pth", "stableanimator",
                 "huggingface.co/FrancisRing/StableAnimator", title="weight name not in the folder list")


def test_weight_deleted_after_listing(host):
    folder = host.models_dir / "stableanimator"
    shutil.copyfile(folder / "pose_net.pth", folder / "pose_net_gone.pth")
    assert "pose_net_gone.pth" in host.object_info("StableAnimatorModelLoader")["StableAnimatorModelLoader"]["input"]["required"]["pose_net"][1]["options"] \
        or "pose_net_gone.pth" in str(host.object_info("StableAnimatorModelLoader"))
    (folder / "pose_net_gone.pth").unlink()
    expect_error(host, base_prompt(pose_net="pose_net_gone.pth"), "pose_net_gone.pth", str(folder.name),
                 title="weight file deleted after the list was loaded")


def test_truncated_weight_file(host):
    folder = host.models_dir / "stableanimator"
    data = (folder / "face_encoder.pth").read_bytes()
    (folder / "face_encoder_truncated.pth").write_bytes(data[: len(data) // 2])
    expect_error(host, base_prompt(face_encoder="face_encoder_truncated.pth"), "face_encoder_truncated.pth",
                 title="truncated .pth (interrupted download)")


def test_truncated_svd_checkpoint(host):
    folder = host.models_dir / "checkpoints"
    with open(folder / "svd_xt.safetensors", "rb") as f:
        head = f.read(8 << 20)
    (folder / "svd_truncated.safetensors").write_bytes(head)
    expect_error(host, base_prompt(svd_checkpoint="svd_truncated.safetensors"), "svd_truncated.safetensors",
                 "Download svd_xt.safetensors again", title="truncated svd_xt.safetensors")


def test_wrong_file_for_unet(host):
    expect_error(host, base_prompt(unet="pose_net.pth"), "pose_net.pth", "select unet.pth",
                 title="pose_net.pth chosen as the unet")


def test_wrong_file_for_pose_net(host):
    expect_error(host, base_prompt(pose_net="face_encoder.pth"), "face_encoder.pth",
                 title="face_encoder.pth chosen as the pose_net")


class _Payload:
    """Pickles to a call of os.system: loading it without weights_only would run the command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_that_runs_code_is_refused(host, tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = host.models_dir / "stableanimator" / "unet_evil.pth"
    torch.save({"conv_in.weight": torch.zeros(1), "payload": _Payload(f"touch {marker}")}, evil)
    assert not marker.exists()
    message = expect_error(host, base_prompt(unet="unet_evil.pth"), "unet_evil.pth",
                           title=".pth whose pickle would run code")
    assert not marker.exists(), "loading the checkpoint ran code from its pickle"
    assert "weights_only" in message or "unsafe" in message.lower() or "not allowed" in message.lower() \
        or "refus" in message.lower(), message


# ---------------------------------------------------------------------------------------------------------------
# Images and sizes

def test_reference_without_face(host):
    expect_error(host, base_prompt(ref="bad_noface.png"), "no face", title="reference photo without a detectable face")


def test_fewer_pose_frames_than_requested(host):
    expect_error(host, base_prompt(frames=5), "5 frames", "3 pose images", title="fewer pose frames than `frames`")


def test_negative_frame_count(host):
    """Zero frames: `frames` 0 means every pose frame, and no core node yields an empty IMAGE batch (LoadImage
    gives at least one frame, ImageFromBatch clamps), so the only way to ask for no frames is a value under 0.
    The pack's own check answers (ComfyUI's range check is off for inputs the pack validates)."""
    expect_error(host, base_prompt(frames=-1), "Animator Conditioning", "frames = -1 is below its minimum 0",
                 title="frames below 0", before_running=True)


@pytest.mark.parametrize("width,height", [(100, 64), (64, 96)])
def test_size_not_multiple_of_64(host, width, height):
    with pytest.raises(PromptError) as err:
        host.queue(base_prompt(width=width, height=height))   # refused before anything runs
    assert err.value.body["error"]["type"] == "prompt_outputs_failed_validation"
    message = err.value.user_message()
    print(f"\n[catalogue] size {width}x{height}\n    {message}")
    assert "multiple of 64" in message
    still_serves(host)


def test_grayscale_images_work(host):
    prompt = base_prompt(ref="bad_ref_gray.png", poses="bad_poses_gray.webp", frames=3)
    # the stand-in face detector only sees red, so the identity comes from the colour photo; the grayscale
    # reference and pose frames go into CLIP, the VAE and PoseNet
    prompt["12"] = {"class_type": "LoadImage", "inputs": {"image": "bad_ref.png"}}
    prompt["5"]["inputs"]["images"] = ["12", 0]
    prompt["13"] = {"class_type": "StableAnimatorFaceEmbed", "inputs": {"face_analysis": ["4", 0], "images": ["1", 0],
                                                                        "channel_order": "BGR (training)",
                                                                        "on_missing": "zero embedding (official)"}}
    prompt["14"] = {"class_type": "MaskToImage", "inputs": {"mask": ["13", 1]}}   # the grayscale photo in Face Embed
    prompt["15"] = {"class_type": "PreviewImage", "inputs": {"images": ["14", 0]}}
    outputs = host.run(add_generation(prompt, prefix="bad_inputs/gray"), timeout=600)
    frames = e2e.webp_frames(host.output_dir / outputs["11"]["images"][0]["subfolder"] / outputs["11"]["images"][0]["filename"])
    assert len(frames) == 3 and frames[0].shape == (H, W, 3)


def test_rgba_images_work(host):
    prompt = base_prompt(ref="bad_ref_rgba.png", frames=3)
    prompt["12"] = {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["1", 0], "alpha": ["1", 1]}}
    prompt["13"] = {"class_type": "JoinImageWithAlpha", "inputs": {"image": ["2", 0], "alpha": ["2", 1]}}
    prompt["5"]["inputs"]["images"] = ["12", 0]
    prompt["6"]["inputs"].update(reference=["12", 0])
    prompt["30"]["inputs"]["images"] = ["13", 0]   # the RGBA pose frames, resized to the video size
    prompt["15"] = {"class_type": "StableAnimatorDWPoseLoader", "inputs": {"detector": e2e.DET, "pose_model": e2e.POSE,
                                                                           "device": "cpu"}}
    prompt["16"] = {"class_type": "StableAnimatorPoseExtract", "inputs": {"dwpose": ["15", 0], "images": ["12", 0]}}
    prompt["17"] = {"class_type": "StableAnimatorPoseRender", "inputs": {"pose_keypoint": ["16", 0], "width": W,
                                                                         "height": H, "body": True, "hands": True,
                                                                         "face": True}}
    prompt["18"] = {"class_type": "PreviewImage", "inputs": {"images": ["17", 0]}}
    outputs = host.run(add_generation(prompt, prefix="bad_inputs/rgba"), timeout=600)
    frames = e2e.webp_frames(host.output_dir / outputs["11"]["images"][0]["subfolder"] / outputs["11"]["images"][0]["filename"])
    assert len(frames) == 3 and frames[0].shape == (H, W, 3)


def test_driving_frame_without_person_works_with_warning(host):
    log_start = len(host.log())
    prompt = base_prompt(frames=0)
    prompt.update({
        "12": {"class_type": "LoadImage", "inputs": {"image": "bad_driving.webp"}},
        "15": {"class_type": "StableAnimatorDWPoseLoader", "inputs": {"detector": e2e.DET, "pose_model": e2e.POSE,
                                                                      "device": "cpu"}},
        "16": {"class_type": "StableAnimatorPoseExtract", "inputs": {"dwpose": ["15", 0], "images": ["1", 0]}},
        "17": {"class_type": "StableAnimatorPoseExtract", "inputs": {"dwpose": ["15", 0], "images": ["12", 0]}},
        "18": {"class_type": "StableAnimatorPoseAlign", "inputs": {"driving": ["17", 0], "reference": ["16", 0], "align": True}},
        "19": {"class_type": "StableAnimatorPoseRender", "inputs": {"pose_keypoint": ["18", 0], "width": W, "height": H,
                                                                    "body": True, "hands": True, "face": True}},
    })
    prompt["6"]["inputs"]["pose_images"] = ["19", 0]
    host.run(prompt, timeout=300)
    log = host.log()[log_start:]
    warnings = [line for line in log.splitlines() if "no person" in line]
    print("\n[catalogue] driving frame without a person (works)\n    " + "\n    ".join(warnings))
    assert len(warnings) == 1 and "frame 1" in warnings[0], warnings


# ---------------------------------------------------------------------------------------------------------------
# Values ComfyUI 0.3.75 does not check for V3 nodes: combos, names that leave their folder, NaN numbers

def test_unknown_dtype_is_refused_before_loading(host):
    expect_error(host, base_prompt(dtype="fp8"), "Load Animator Models", "dtype 'fp8' is not one of",
                 "'fp16'", title="dtype fp8 (not offered)", before_running=True)


def test_weight_name_outside_its_folder_is_refused(host):
    for name in ("../checkpoints/svd_xt.safetensors", "/etc/passwd"):
        expect_error(host, base_prompt(unet=name), "unet", name, "points outside the stableanimator model folder",
                     title=f"weight name {name}", before_running=True)


def test_unknown_provider_is_refused(host):
    prompt = base_prompt()
    prompt["4"]["inputs"]["provider"] = "TPU"
    expect_error(host, prompt, "Load Face Analysis", "provider 'TPU' is not one of", "ROCm",
                 title="provider TPU", before_running=True)


def test_provider_this_onnxruntime_lacks_is_refused(host):
    import onnxruntime
    if "ROCMExecutionProvider" in onnxruntime.get_available_providers():
        pytest.fail("this test needs an onnxruntime without ROCm (the host's CPU/CUDA build)")
    prompt = base_prompt()
    prompt["4"]["inputs"]["provider"] = "ROCm"
    expect_error(host, prompt, "ROCm needs onnxruntime's ROCMExecutionProvider", "install onnxruntime-rocm",
                 title="provider ROCm with an onnxruntime that has no ROCm", before_running=True)


def test_old_dwpose_device_label_still_loads(host):
    """Saved workflows hold device 'cpu' (the old label of 'CPU')."""
    prompt = {"1": {"class_type": "StableAnimatorDWPoseLoader", "inputs": {"detector": e2e.DET, "pose_model": e2e.POSE,
                                                                            "device": "cpu"}},
              "2": {"class_type": "LoadImage", "inputs": {"image": "bad_ref.png"}},
              "3": {"class_type": "StableAnimatorPoseExtract", "inputs": {"dwpose": ["1", 0], "images": ["2", 0]}},
              "4": {"class_type": "StableAnimatorPoseRender", "inputs": {"pose_keypoint": ["3", 0], "width": SIZE,
                                                                         "height": SIZE, "body": True, "hands": True,
                                                                         "face": True}},
              "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}}}
    assert host.run(prompt, timeout=300)["5"]["images"]


def test_nan_number_is_refused(host):
    prompt = base_prompt()
    prompt["6"]["inputs"]["augmentation"] = "nan"   # ComfyUI turns the text into float('nan'), which passes min/max
    expect_error(host, prompt, "Animator Conditioning", "augmentation is nan", "finite number",
                 title="augmentation NaN", before_running=True)


# ---------------------------------------------------------------------------------------------------------------
# NaN and infinite pixels

def broken_image(prompt, image_node: str, value: str, size: int = 8) -> list:
    """Nodes that paste a size x size patch of `value` ('nan', 'inf') into the image of `image_node`, as an
    upscaler that overflowed in fp16 would hand it on; returns the link to the broken image."""
    prompt["20"] = {"class_type": "SolidMask", "inputs": {"value": value, "width": size, "height": size}}
    prompt["21"] = {"class_type": "MaskToImage", "inputs": {"mask": ["20", 0]}}
    prompt["22"] = {"class_type": "ImageCompositeMasked", "inputs": {"destination": [image_node, 0], "source": ["21", 0],
                                                                     "x": 0, "y": 0, "resize_source": False}}
    return ["22", 0]


def test_nan_in_the_reference_is_refused(host):
    prompt = base_prompt()
    prompt["6"]["inputs"]["reference"] = broken_image(prompt, "1", "nan")
    expect_error(host, prompt, "Animator Conditioning", "input 'reference' has NaN or infinite values in 64 of 409600 pixels",
                 "fix or replace that node", title="NaN pixels in the reference")


def test_inf_in_the_pose_images_is_refused(host):
    prompt = base_prompt()
    # ComfyUI's own range check stops an infinite SolidMask value, so a test-only node makes the broken frames
    prompt["20"] = {"class_type": "SATestBrokenPixels", "inputs": {"images": ["2", 0], "value": "inf", "size": 4}}
    prompt["6"]["inputs"]["pose_images"] = ["20", 0]
    expect_error(host, prompt, "Animator Conditioning", "input 'pose_images'", "48 of 12288 pixels",
                 "frame(s) 0, 1, 2", title="infinite pixels in the pose images")


def test_nan_in_face_embed_images_is_refused(host):
    prompt = base_prompt()
    prompt["5"]["inputs"]["images"] = broken_image(prompt, "1", "nan")
    expect_error(host, prompt, "Face Embed", "input 'images'", title="NaN pixels into Face Embed")


# ---------------------------------------------------------------------------------------------------------------
# Faces: too small, several, none (with the old option label)

def test_tiny_face_is_refused_with_the_reason(host):
    message = expect_error(host, base_prompt(ref="bad_tiny_face.png"), "StableAnimator", "only 13x14 px",
                           "under min_face_size (40 px)", "112x112", "on_missing",
                           title="64x64 reference: a 13x14 px face")
    assert "zero embedding (no identity)" in message


def test_tiny_face_accepted_when_the_minimum_is_lowered(host):
    prompt = base_prompt(ref="bad_tiny_face.png")
    prompt["5"]["inputs"]["min_face_size"] = 8
    assert host.run(prompt, timeout=300)["7"] is not None


def test_several_faces_warn_which_one_is_used(host):
    start = len(host.log())
    prompt = base_prompt(ref="bad_group.png")
    host.run(prompt, timeout=300)
    lines = [line for line in log_since(host, start).splitlines() if "faces found" in line]
    print("\n[catalogue] group photo (works, with a warning)\n    " + "\n    ".join(lines))
    assert len(lines) == 1, lines
    assert "6 faces found in the image; using the largest, 128x144 px" in lines[0]
    assert "Crop the photo" in lines[0]


def test_old_zero_embedding_label_still_runs(host):
    """Workflows saved with 'zero embedding (official)' keep working; the log says what happened."""
    start = len(host.log())
    prompt = base_prompt(ref="bad_noface.png")
    prompt["5"]["inputs"]["on_missing"] = "zero embedding (official)"
    host.run(prompt, timeout=300)
    log = log_since(host, start)
    assert "no face was found in the image" in log and "using a zero identity embedding" in log, log[-2000:]


# ---------------------------------------------------------------------------------------------------------------
# Keypoints from another pack (typed in as JSON by a test-only node)

def body(points, scale=(1.0, 1.0)):
    """18 OpenPose body points [x, y, c]; points: {index: (x, y)}."""
    out = [0.0] * 54
    for i, (x, y) in points.items():
        out[3 * i:3 * i + 3] = [x * scale[0], y * scale[1], 1.0]
    return out


STANDING = {0: (0.5, 0.15), 1: (0.5, 0.3), 2: (0.4, 0.3), 5: (0.6, 0.3), 3: (0.35, 0.45), 6: (0.65, 0.45),
            8: (0.45, 0.65), 11: (0.55, 0.65), 9: (0.45, 0.85), 12: (0.55, 0.85), 10: (0.45, 1.1), 13: (0.55, 1.1)}


def keypoint_prompt(frames, prefix):
    return {"1": {"class_type": "SATestPoseKeypointJSON", "inputs": {"text": json.dumps(frames)}},
            "2": {"class_type": "StableAnimatorPoseRender", "inputs": {"pose_keypoint": ["1", 0], "width": SIZE,
                                                                       "height": SIZE, "body": True, "hands": True,
                                                                       "face": True}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}}}


def rendered(host, outputs, node="3"):
    return [np.asarray(Image.open(host.output_dir / i["subfolder"] / i["filename"])) for i in outputs[node]["images"]]


def test_normalised_keypoints_with_points_below_the_frame(host):
    """0..1 fractions where the ankles lie below the frame (y = 1.1) stay fractions: both frames are drawn as
    the same skeleton given in pixels, none collapses into a corner."""
    canvas = {"canvas_width": 512, "canvas_height": 768}
    inside = {k: v for k, v in STANDING.items() if v[1] <= 1}
    normalised = [{"people": [{"pose_keypoints_2d": body(inside)}], **canvas},
                  {"people": [{"pose_keypoints_2d": body(STANDING)}], **canvas}]
    pixels = [{"people": [{"pose_keypoints_2d": body(inside, (512, 768))}], **canvas},
              {"people": [{"pose_keypoints_2d": body(STANDING, (512, 768))}], **canvas}]
    got = rendered(host, host.run(keypoint_prompt(normalised, "bad_inputs/kp_norm")))
    want = rendered(host, host.run(keypoint_prompt(pixels, "bad_inputs/kp_px")))
    for g, w in zip(got, want):
        drawn = (w.max(-1) > 0).mean()
        assert drawn > 0.002, drawn   # ~0.7 % here; the old per-person guess drew a dot in the corner (0.002 %)
        # the same drawing up to sub-pixel shifts (float32 fractions x 512 and typed-in pixels round differently
        # on the 2160 px canvas): measured IoU 0.97 and mean difference 6 of 255 on the drawn pixels
        ink_g, ink_w = g.max(-1) > 0, w.max(-1) > 0
        assert (ink_g & ink_w).sum() / (ink_g | ink_w).sum() > 0.9
        assert np.abs(g.astype(int) - w).max(-1)[ink_g | ink_w].mean() < 15


def test_nan_keypoint_is_a_missing_point(host):
    canvas = {"canvas_width": SIZE, "canvas_height": SIZE}
    pts = body(STANDING, (SIZE, SIZE))
    broken = list(pts)
    broken[3 * 5:3 * 5 + 2] = [float("nan"), float("nan")]   # left shoulder NaN with confidence 1
    missing = list(pts)
    missing[3 * 5:3 * 5 + 3] = [0.0, 0.0, 0.0]
    got = rendered(host, host.run(keypoint_prompt([{"people": [{"pose_keypoints_2d": broken}], **canvas}], "bad_inputs/kp_nan")))
    want = rendered(host, host.run(keypoint_prompt([{"people": [{"pose_keypoints_2d": missing}], **canvas}], "bad_inputs/kp_gap")))
    np.testing.assert_array_equal(got[0], want[0])
    assert (got[0].max(-1) > 0).mean() > 0.002   # the rest of the skeleton is drawn (about 0.7 %)


# ---------------------------------------------------------------------------------------------------------------
# Sampling with core nodes: the checks ride on the conditioning, so core KSampler reports them too

def core_ksampler(prompt, model, latent):
    prompt["9"] = {"class_type": "KSampler", "inputs": {
        "model": model, "positive": ["6", 0], "negative": ["6", 1], "latent_image": latent, "seed": next(SEEDS),
        "steps": 1, "cfg": 2.5, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0}}
    return prompt


def test_core_ksampler_with_a_model_without_apply(host):
    prompt = core_ksampler(add_generation(base_prompt()), ["3", 0], ["6", 2])   # the loader's MODEL, unpatched
    expect_error(host, prompt, "MODEL has no StableAnimator patches", "Apply Animator",
                 title="conditioning used with a MODEL that did not go through StableAnimator Apply (core KSampler)")


def test_core_ksampler_with_more_latent_frames_than_poses(host):
    prompt = add_generation(base_prompt(frames=2))
    prompt["12"] = {"class_type": "RepeatLatentBatch", "inputs": {"samples": ["6", 2], "amount": 2}}
    core_ksampler(prompt, ["8", 0], ["12", 0])
    expect_error(host, prompt, "latent has 4 frames but the conditioning has 2 pose frames",
                 title="latent with more frames than the conditioning's pose frames (core KSampler)")


def test_core_ksampler_with_video_linear_cfg_runs(host):
    prompt = add_generation(base_prompt(frames=2))
    prompt["12"] = {"class_type": "VideoLinearCFGGuidance", "inputs": {"model": ["8", 0], "min_cfg": 1.0}}
    core_ksampler(prompt, ["12", 0], ["6", 2])
    outputs = host.run(prompt, timeout=300)
    assert outputs["11"]["images"], outputs


def test_unknown_sampler_name_is_refused_before_loading(host):
    prompt = add_generation(base_prompt())
    del prompt["7"]   # ComfyUI runs the outputs that validate; only the video output is left here
    prompt["9"]["inputs"]["sampler_name"] = "euler_fake"
    expect_error(host, prompt, "Animator Sampler", "sampler_name 'euler_fake' is not one of",
                 title="sampler_name euler_fake", before_running=True)
