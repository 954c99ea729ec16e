"""Soak: 20 consecutive prompts through our nodes on one host; the host's memory must stay flat.

Each prompt changes the sampler seed, so ComfyUI re-runs sampling (2 steps) and decoding every time, and every
tenth prompt changes the conditioning seed too (CLIP ViT-H, VAE encode, face tokens: the slow part on a CPU) while
the loaders stay cached: what a user does when they press Queue again and again. The test checks from ComfyUI's
own execution messages that exactly those nodes re-ran. Memory: RSS (VmRSS of the server process), and on a CUDA
device also the memory torch has allocated there (from /system_stats). After prompt 20 it must be within 5% or
150 MB, whichever is larger, of the value after prompt 5 (the first prompts grow allocator pools and caches; a leak
of even one latent, image batch or model copy per prompt would add up past that over 15 prompts)."""
import time

import pytest
from PIL import Image

from fixtures import e2e_models as e2e

pytestmark = [pytest.mark.host, pytest.mark.filterwarnings("ignore::FutureWarning")]  # ~1 min on 2 idle CPU cores
W, H, FRAMES, PROMPTS = 64, 128, 4, 20
SAMPLING = {"8", "9", "10"}                  # sampler, decode, save: new sampler seed every prompt
CONDITIONING = {"6"}                         # re-runs when its seed changes (every tenth prompt)
LOADERS = {"1", "2", "3", "4", "5", "7", "30"}   # images, resize, loaders, face embed, apply: cached after the first prompt


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def prompt(seed: int, cond_seed: int) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "soak_ref.png"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "soak_poses.webp"}},
        "30": e2e.resize_node(["2", 0], W, H),
        "3": {"class_type": "StableAnimatorModelLoader", "inputs": {
            "svd_checkpoint": "svd_xt.safetensors", "unet": "unet.pth", "pose_net": "pose_net.pth",
            "face_encoder": "face_encoder.pth", "dtype": "auto"}},
        "4": {"class_type": "StableAnimatorFaceAnalysisLoader", "inputs": {"provider": "CPU", "det_size": 640}},
        "5": {"class_type": "StableAnimatorFaceEmbed", "inputs": {"face_analysis": ["4", 0], "images": ["1", 0],
                                                                  "channel_order": "BGR (training)", "on_missing": "error"}},
        "6": {"class_type": "StableAnimatorConditioning", "inputs": {
            "clip_vision": ["3", 1], "vae": ["3", 2], "animator": ["3", 3], "face_embed": ["5", 0],
            "reference": ["1", 0], "pose_images": ["30", 0], "width": W, "height": H, "frames": FRAMES,
            "fps": 7, "motion_bucket_id": 127, "augmentation": 0.02, "seed": cond_seed}},
        "7": {"class_type": "StableAnimatorApply", "inputs": {"model": ["3", 0], "animator": ["3", 3],
                                                              "id_strength": 1.0, "pose_strength": 1.0,
                                                              "window": 16, "overlap": 4}},
        "8": {"class_type": "StableAnimatorSampler", "inputs": {
            "model": ["7", 0], "positive": ["6", 0], "negative": ["6", 1], "latent": ["6", 2], "seed": seed,
            "steps": 2, "cfg_min": 1.0, "cfg_max": 2.5, "sampler_name": "euler", "scheduler": "karras",
            "denoise": 1.0}},
        "9": {"class_type": "StableAnimatorDecode", "inputs": {"vae": ["3", 2], "latent": ["8", 0], "chunk": 4}},
        "10": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["9", 0], "filename_prefix": "soak/video",
                                                            "fps": 7.0, "lossless": False, "quality": 80,
                                                            "method": "fastest"}},
    }


def cuda_allocated_mb(host):
    """torch's allocated memory on the server's first device when it is a CUDA device, else None."""
    device = host.get("/system_stats")["devices"][0]
    if device["type"] != "cuda":
        return None
    return (device["torch_vram_total"] - device["torch_vram_free"]) / 2 ** 20


def ran_nodes(entry) -> set:
    """Node ids that executed (not served from ComfyUI's cache) in a history entry."""
    cached = set()
    for kind, data in entry["status"]["messages"]:
        if kind == "execution_cached":
            cached |= set(data["nodes"])
    return set(entry["prompt"][2]) - cached


def flat(values, label):
    base, last = values[4], values[-1]
    limit = max(0.05 * base, 150.0)
    print(f"soak: {label} after prompt 5 {base:.0f} MB, after prompt {PROMPTS} {last:.0f} MB, "
          f"growth {last - base:+.0f} MB (limit {limit:.0f} MB)")
    assert last - base <= limit, values
    # and no steady climb: the last five prompts add no more than the limit's third
    assert values[-1] - values[-6] <= limit / 3 + 1, values


def test_twenty_prompts_keep_memory_flat(comfy_host, request):
    host = comfy_host
    e2e.prepare_host(host, request)
    Image.fromarray(e2e.reference_rgb()).save(host.input_dir / "soak_ref.png")
    e2e.save_animation(host.input_dir / "soak_poses.webp", e2e.skeleton_frames(FRAMES))
    pid = host.proc.pid
    rss, cuda, times = [], [], []
    for i in range(PROMPTS):
        t = time.time()
        entry = host.wait(host.queue(prompt(seed=500 + i, cond_seed=500 + i // 10)), timeout=300)
        times.append(time.time() - t)
        assert entry["outputs"]["10"]["images"], entry["outputs"]
        ran = ran_nodes(entry)
        if i == 0:
            assert ran == SAMPLING | CONDITIONING | LOADERS, ran
        elif i % 10 == 0:
            assert ran == SAMPLING | CONDITIONING, (i, ran)   # new conditioning seed
        else:
            assert ran == SAMPLING, (i, ran)                  # only the sampler's seed changed
        rss.append(rss_mb(pid))
        cuda.append(cuda_allocated_mb(host))
    print("\nsoak: RSS after each prompt (MB): " + ", ".join(f"{v:.0f}" for v in rss))
    print(f"soak: seconds per prompt: first {times[0]:.1f}, then mean {sum(times[1:]) / (PROMPTS - 1):.1f}")
    flat(rss, "RSS")
    if cuda[0] is None:
        assert host.get("/system_stats")["devices"][0]["type"] == "cpu"
        print("soak: the host runs on the CPU: there is no CUDA memory to measure, RSS holds the models and tensors")
    else:
        print("soak: CUDA allocated after each prompt (MB): " + ", ".join(f"{v:.0f}" for v in cuda))
        flat(cuda, "CUDA allocated")
