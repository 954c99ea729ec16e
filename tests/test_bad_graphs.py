"""A catalogue of graphs users build by mistake, each queued on the real host (as in test_bad_inputs.py): the
bad graph either stops with a message naming the node, the cause and the fix (before any sampling where that
is possible) or its result is verified, and then a good graph runs.

1. Apply Animator with overlap 0: refused before running (frames window, 2*window, ... would lie in no window);
   overlap 1 samples every frame. A NaN latent reaching Decode Video names the sampler, not the VAE.
2. Core "Context Windows (Manual)" after Apply Animator: refused at the start of the run, under the pack's
   Sampler and core KSampler alike; without it, Apply's windows run.
3. Two HJB Face Optimisation nodes chained: the second is refused, before sampling; one HJB runs.
4. One POSE_KEYPOINT list mixing 0..1 fractions and pixels: each frame is read in its own units (the drawing
   equals the all-pixel drawing) and the log names the frames of each kind.

Run with -s to see the catalogue: every entry prints the exact message a user sees."""
import json

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file

from comfy_host import PromptError
from fixtures import e2e_models as e2e
from fixtures.catalogue import failed_prompt

pytestmark = [pytest.mark.host, pytest.mark.filterwarnings("ignore::FutureWarning")]
W, H = 64, 64
SEEDS = iter(range(5000, 100000))


@pytest.fixture(scope="module")
def host(comfy_host, request):
    e2e.prepare_host(comfy_host, request)
    Image.fromarray(e2e.reference_rgb()).save(comfy_host.input_dir / "graphs_ref.png")
    e2e.save_animation(comfy_host.input_dir / "graphs_poses.webp", e2e.skeleton_frames(8))
    return comfy_host


def generation(frames=2, window=16, overlap=4, sampler="pack", prefix="bad_graphs/latent"):
    """Reference + pose frames (8 loaded, repeated up to `frames`) -> loader, face embed, conditioning, Apply
    -> the pack's Sampler (or core KSampler) -> SaveLatent (node 12). Decode is added where a test needs it."""
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "graphs_ref.png"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "graphs_poses.webp"}},
        "20": {"class_type": "RepeatImageBatch", "inputs": {"image": ["2", 0], "amount": -(-frames // 8)}},
        "21": {"class_type": "ImageFromBatch", "inputs": {"image": ["20", 0], "batch_index": 0, "length": frames}},
        "30": e2e.resize_node(["21", 0], W, H),
        "3": {"class_type": "StableAnimatorModelLoader", "inputs": {
            "dtype": "auto", "svd_checkpoint": "svd_xt.safetensors", "unet": "unet.pth", "pose_net": "pose_net.pth",
            "face_encoder": "face_encoder.pth"}},
        "4": {"class_type": "StableAnimatorFaceAnalysisLoader", "inputs": {"provider": "CPU", "det_size": 640}},
        "5": {"class_type": "StableAnimatorFaceEmbed", "inputs": {"face_analysis": ["4", 0], "images": ["1", 0],
                                                                  "channel_order": "BGR (training)", "on_missing": "error"}},
        "6": {"class_type": "StableAnimatorConditioning", "inputs": {
            "clip_vision": ["3", 1], "vae": ["3", 2], "animator": ["3", 3], "face_embed": ["5", 0],
            "reference": ["1", 0], "pose_images": ["30", 0], "width": W, "height": H, "frames": frames,
            "fps": 7, "motion_bucket_id": 127, "augmentation": 0.02, "seed": next(SEEDS)}},
        "8": {"class_type": "StableAnimatorApply", "inputs": {"model": ["3", 0], "animator": ["3", 3], "id_strength": 1.0,
                                                              "pose_strength": 1.0, "window": window, "overlap": overlap}},
        "12": {"class_type": "SaveLatent", "inputs": {"samples": ["9", 0], "filename_prefix": prefix}},
    }
    if sampler == "pack":
        prompt["9"] = {"class_type": "StableAnimatorSampler", "inputs": {
            "model": ["8", 0], "positive": ["6", 0], "negative": ["6", 1], "latent": ["6", 2], "seed": next(SEEDS),
            "steps": 1, "cfg_min": 1.0, "cfg_max": 2.5, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0}}
    else:
        prompt["9"] = {"class_type": "KSampler", "inputs": {
            "model": ["8", 0], "positive": ["6", 0], "negative": ["6", 1], "latent_image": ["6", 2], "seed": next(SEEDS),
            "steps": 1, "cfg": 2.5, "sampler_name": "euler", "scheduler": "karras", "denoise": 1.0}}
    return prompt


def failing_node(err: PromptError) -> str | None:
    for kind, data in err.body.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return data.get("node_id")
    return None


def expect_error(host, prompt, *fragments, title, before_running=False, node=None):
    """The prompt fails with a message holding every fragment; before_running: refused at validation (nothing
    loaded, nothing ran); node: the run stopped at that node."""
    err = failed_prompt(host, prompt, *fragments, title=title, before_running=before_running, timeout=600)
    if before_running:
        assert set(err.body["node_errors"]) == {"8"}, err.body   # at Apply Animator
    if node is not None:
        assert failing_node(err) == node, err.body
    return err.user_message()


def saved_latent(host, outputs, node="12"):
    entry = outputs[node]["latents"][0]
    return load_file(str(host.output_dir / entry["subfolder"] / entry["filename"]))["latent_tensor"]


def log_since(host, start: int) -> str:
    return host.log()[start:]


# ---------------------------------------------------------------------------------------------------------------
# 1. Window/overlap that leaves frames in no window; a NaN latent at Decode Video

@pytest.mark.parametrize("window,frames", [(8, 24), (2, 8)])
def test_overlap_zero_is_refused_before_running(host, window, frames):
    prompt = generation(frames=frames, window=window, overlap=0, sampler="core")
    expect_error(host, prompt, "Apply Animator", "overlap (0) must be at least 1",
                 f"frames {window}, {2 * window}, ... lie in no window", title=f"Apply Animator window {window}, overlap 0",
                 before_running=True)


def test_overlap_one_samples_every_frame(host):
    """The issue's graph with overlap 1: core KSampler, 24 frames, windows of 8 -> every latent frame finite and
    sampled (overlap 0 left frames 8 and 16 NaN, a black video)."""
    latent = saved_latent(host, host.run(generation(frames=24, window=8, overlap=1, sampler="core",
                                                    prefix="bad_graphs/overlap1"), timeout=600))
    assert latent.shape[0] == 24 and bool(latent.isfinite().all())
    assert (latent.flatten(1).std(1) > 0).all()


def test_nan_latent_at_decode_names_the_sampler(host):
    prompt = generation()
    # a latent with NaN, as a sampler that overflowed would hand it on (ComfyUI turns "nan" into float('nan'))
    prompt["13"] = {"class_type": "LatentMultiply", "inputs": {"samples": ["9", 0], "multiplier": "nan"}}
    prompt["10"] = {"class_type": "StableAnimatorDecode", "inputs": {"vae": ["3", 2], "latent": ["13", 0], "chunk": 4}}
    prompt["11"] = {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["10", 0], "filename_prefix": "bad_graphs/nan",
                                                                 "fps": 7.0, "lossless": True, "quality": 90, "method": "default"}}
    message = expect_error(host, prompt, "Decode Video", "input 'latent' has NaN", "in frame(s) 0, 1",
                           "The sampler that made this latent", "not the VAE", title="NaN latent into Decode Video",
                           node="10")
    assert "upscaler" not in message
    prompt["13"]["inputs"]["multiplier"] = 1.0
    assert host.run(prompt, timeout=600)["11"]["images"]


# ---------------------------------------------------------------------------------------------------------------
# 2. Core Context Windows (Manual) after Apply Animator

def with_core_context_windows(prompt):
    prompt["14"] = {"class_type": "ContextWindowsManual", "inputs": {
        "model": ["8", 0], "context_length": 8, "context_overlap": 2, "context_schedule": "standard_static",
        "context_stride": 1, "closed_loop": False, "fuse_method": "pyramid", "dim": 0}}
    prompt["9"]["inputs"]["model"] = ["14", 0]
    return prompt


@pytest.mark.parametrize("sampler", ["pack", "core"])
def test_core_context_windows_after_apply_are_refused(host, sampler):
    start = len(host.log())
    prompt = with_core_context_windows(generation(frames=24, window=8, overlap=2, sampler=sampler))
    expect_error(host, prompt, "another node's context windows", "IndexListContextHandler, context_length 8",
                 "Context Windows (Manual)", "set the window and overlap on Apply Animator",
                 title=f"Context Windows (Manual) after Apply Animator ({sampler} sampler)", node="9")
    assert "The size of tensor a" not in log_since(host, start)   # stopped before core's set_step crash


def test_apply_animator_windows_run_without_the_core_node(host):
    latent = saved_latent(host, host.run(generation(frames=24, window=8, overlap=2, prefix="bad_graphs/windows"),
                                         timeout=600))
    assert latent.shape[0] == 24 and bool(latent.isfinite().all())


# ---------------------------------------------------------------------------------------------------------------
# 3. Two HJB Face Optimisation nodes chained

def hjb_node(model):
    return {"class_type": "StableAnimatorHJB", "inputs": {
        "model": model, "vae": ["3", 2], "arcface": ["15", 0], "reference": ["1", 0], "reference_face": ["5", 0],
        "face_masks": ["18", 0], "start_step": 0, "end_step": 20, "iterations": 1, "learning_rate": 0.1,
        "context": 8, "full_frame": False}}


def with_hjb(prompt, chained: int):
    """Apply -> `chained` HJB nodes (16, 17) -> sampler; face masks: the whole frame for each of 2 frames."""
    prompt["15"] = {"class_type": "StableAnimatorArcFaceLoader", "inputs": {"weights": "stableanimator/" + e2e.ARCFACE}}
    prompt["16"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": W, "height": H}}
    prompt["19"] = {"class_type": "MaskToImage", "inputs": {"mask": ["16", 0]}}
    prompt["22"] = {"class_type": "RepeatImageBatch", "inputs": {"image": ["19", 0], "amount": 2}}
    prompt["18"] = {"class_type": "ImageToMask", "inputs": {"image": ["22", 0], "channel": "red"}}
    model = ["8", 0]
    for i in range(chained):
        prompt[f"2{3 + i}"] = hjb_node(model)
        model = [f"2{3 + i}", 0]
    prompt["9"]["inputs"]["model"] = model
    return prompt


def test_second_hjb_node_is_refused_before_sampling(host):
    start = len(host.log())
    expect_error(host, with_hjb(generation(), chained=2), "HJB Face Optimisation",
                 "already went through another HJB Face Optimisation node", "Remove one of the two",
                 title="two HJB Face Optimisation nodes chained", node="24")
    assert "identity loss" not in log_since(host, start)   # no sampling step ran


def test_one_hjb_node_runs_and_refines(host):
    """Under the Animator Sampler with a CFG ramp (cfg_min 1.0, cfg_max 2.5), which clones the MODEL: HJB refines
    step 0 once. (Before the fix a clone's deep copy of the HJB function never saw its run start, so HJB did
    nothing there, and the first of two chained HJB nodes did nothing either.)"""
    start = len(host.log())
    latent = saved_latent(host, host.run(with_hjb(generation(prefix="bad_graphs/hjb"), chained=1), timeout=600))
    assert bool(latent.isfinite().all())
    assert log_since(host, start).count("StableAnimator HJB step 0: identity loss") == 1


# ---------------------------------------------------------------------------------------------------------------
# 4. One POSE_KEYPOINT list mixing 0..1 fractions and pixels

SIZE = 256
STANDING = {0: (0.5, 0.15), 1: (0.5, 0.3), 2: (0.4, 0.3), 5: (0.6, 0.3), 3: (0.35, 0.45), 6: (0.65, 0.45),
            8: (0.45, 0.65), 11: (0.55, 0.65), 9: (0.45, 0.85), 12: (0.55, 0.85), 10: (0.45, 0.95), 13: (0.55, 0.95)}


def keypoint_frame(scale):
    body = [0.0] * 54
    for i, (x, y) in STANDING.items():
        body[3 * i:3 * i + 3] = [x * scale, y * scale, 1.0]
    return {"people": [{"pose_keypoints_2d": body}], "canvas_width": SIZE, "canvas_height": SIZE}


def render(host, frames, prefix):
    prompt = {"1": {"class_type": "SATestPoseKeypointJSON", "inputs": {"text": json.dumps(frames)}},
              "2": {"class_type": "StableAnimatorPoseRender", "inputs": {"pose_keypoint": ["1", 0], "width": SIZE,
                                                                         "height": SIZE, "body": True, "hands": True,
                                                                         "face": True}},
              "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}}}
    outputs = host.run(prompt, timeout=300)
    return [np.asarray(Image.open(host.output_dir / i["subfolder"] / i["filename"])) for i in outputs["3"]["images"]]


def test_keypoints_mixing_fractions_and_pixels(host):
    """Frames 0 and 2 in fractions, frame 1 in pixels (joined from two sources): every frame is drawn as the
    all-pixel list draws it (units read once per list drew the fraction frames as a dot in the corner), and
    the log names which frames are which."""
    start = len(host.log())
    got = render(host, [keypoint_frame(1.0), keypoint_frame(SIZE), keypoint_frame(1.0)], "bad_graphs/kp_mixed")
    warning = [line for line in log_since(host, start).splitlines() if "mixes units" in line]
    print("\n[catalogue] POSE_KEYPOINT mixing fractions and pixels (works, with a warning)\n    " + "\n    ".join(warning))
    assert len(warning) == 1 and "frame(s) 0, 2 hold 0..1 fractions" in warning[0] and "frame(s) 1 hold pixels" in warning[0]
    start = len(host.log())
    want = render(host, [keypoint_frame(SIZE)] * 3, "bad_graphs/kp_pixels")
    assert "mixes units" not in log_since(host, start)
    for g, w in zip(got, want):
        assert (w.max(-1) > 0).mean() > 0.002   # a skeleton, not a dot
        np.testing.assert_array_equal(g, w)
