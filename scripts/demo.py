"""The main job: a headless ComfyUI with this pack animates the shipped example photo with the shipped driving clip
(assets/inputs/stableanimator_driving.mp4, 25 fps with sound, copied into the host's input folder as README tells
users to), running the shipped workflow `workflows/stableanimator_driving_video.json` (converted to ComfyUI's API
format here, as the frontend would), and writes an h264 mp4 with the clip's sound at the clip's frame rate and,
with real weights, the identity plot. --reference / --driving use your files (any photo; mp4, mov, webm, mkv).

With the official weights in the host's models folders it runs them. Otherwise it writes small random weights
in the official formats (the stand-ins the tests use) and says loudly that the video is noise.
Run through scripts/demo.sh, which sets the host up first.
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

from PIL import Image

from comfy_host import REPO, ComfyHost, import_comfy, install_example_inputs, read_host_env, ui_to_api

WORKFLOW = REPO / "workflows" / "stableanimator_driving_video.json"
REAL_FILES = {
    "checkpoints": ["svd_xt.safetensors"],
    "stableanimator": ["unet", "pose_net", "face_encoder"],
    "insightface/models/antelopev2": ["scrfd_10g_bnkps.onnx", "glintr100.onnx"],
    "dwpose": ["yolox_l.onnx", "dw-ll_ucoco_384.onnx"],
}


def real_weights(models: Path) -> dict | None:
    """File names of the official weights in `models`, or None when any is missing."""
    found = {}
    for folder, names in REAL_FILES.items():
        for name in names:
            hits = [p for p in (models / folder).glob(name + ("*" if "." not in name else "")) if p.is_file()]
            if not hits:
                return None
            found[name] = hits[0].name
    return found


def random_models(target: Path) -> Path:
    """Small random weights in the official formats (cached under .host/test_cache), installed into `target`."""
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from fixtures import e2e_models

    cache = e2e_models.build_cache(REPO / ".host" / "test_cache", import_comfy)
    e2e_models.install(cache, target)
    return target


def node(api, class_type, nth=0):
    return [k for k, v in api.items() if v["class_type"] == class_type][nth]


def build_prompt(api: dict, names: dict, size: int, frames: int, steps: int, random: bool, inputs: dict) -> dict:
    for v in api.values():   # the example files the workflow names, or the user's
        if v["class_type"] == "LoadImage" and v["inputs"]["image"] in inputs:
            v["inputs"]["image"] = inputs[v["inputs"]["image"]]
        if v["class_type"] == "LoadVideo" and v["inputs"]["file"] in inputs:
            v["inputs"]["file"] = inputs[v["inputs"]["file"]]
    loader = api[node(api, "StableAnimatorModelLoader")]["inputs"]
    for key in ("unet", "pose_net", "face_encoder"):
        loader[key] = names[key]
    # the video size is set on Video Frames alone (the long side; the clip's aspect gives the other), the others
    # take it by link; frame_cap reads only the frames generated, so the sound is cut with them
    api[node(api, "StableAnimatorVideoFrames")]["inputs"].update(width=size, height=size, frame_cap=frames)
    api[node(api, "StableAnimatorSampler")]["inputs"]["steps"] = steps
    api[node(api, "SaveVideo")]["inputs"]["filename_prefix"] = "stableanimator_demo"
    embed = node(api, "StableAnimatorFaceEmbed")
    if random:   # the stand-in face detector only knows its own test marker, not the astronaut's face
        api[embed]["inputs"]["on_missing"] = "zero embedding (official)"
    else:        # identity of every generated frame against the reference, and its plot
        decode = node(api, "StableAnimatorDecode")
        api["900"] = {"class_type": "StableAnimatorFaceEmbed", "inputs": {
            **api[embed]["inputs"], "images": [decode, 0], "on_missing": "zero embedding (official)"}}
        api["901"] = {"class_type": "StableAnimatorIdentitySimilarity", "inputs": {"reference": [embed, 0], "frames": ["900", 0]}}
        api["902"] = {"class_type": "SaveImage", "inputs": {"images": ["901", 3], "filename_prefix": "stableanimator_identity"}}
    return api


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(REPO / "output" / "demo"), help="folder for the results")
    parser.add_argument("--reference", help="your reference photo (default: the example in assets/inputs/)")
    parser.add_argument("--driving", help="your driving video, mp4/mov/webm/mkv (default: the example clip)")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames to generate from the clip's start, at its frame rate; 0 = all (default 0 real, 8 random)")
    parser.add_argument("--size", type=int, default=None,
                        help="the video's long side; the clip's aspect gives the other, in multiples of 64 "
                             "(default 512 real, 256 random)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default 25 real, 4 random)")
    args = parser.parse_args()
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)

    comfy_models = Path(read_host_env()[1]) / "models"
    names = real_weights(comfy_models)
    random = names is None
    models = None
    if random:
        print("\n" + "!" * 100 + "\n[demo] The official weights are not in " + str(comfy_models) + ".\n"
              "[demo] RUNNING ON SMALL RANDOM WEIGHTS IN THE OFFICIAL FORMATS: THE VIDEO WILL BE NOISE.\n"
              "[demo] Put the weights where README.md says to see a real animation.\n" + "!" * 100 + "\n", flush=True)
        models = random_models(REPO / ".host" / "demo_models")
        names = {"unet": "unet.pth", "pose_net": "pose_net.pth", "face_encoder": "face_encoder.pth"}
    frames = args.frames if args.frames is not None else (8 if random else 0)
    size = args.size or (256 if random else 512)
    steps = args.steps or (4 if random else 25)

    with ComfyHost.from_setup(output_dir=out, models_dir=models) as host:
        print(f"[demo] ComfyUI with StableAnimator is up at {host.url}", flush=True)
        install_example_inputs(host.input_dir)
        inputs = {}
        if args.reference:
            Image.open(args.reference).convert("RGB").save(host.input_dir / "demo_reference.png")
            inputs["stableanimator_reference.jpg"] = "demo_reference.png"
        if args.driving:
            name = "demo_driving" + Path(args.driving).suffix.lower()
            shutil.copyfile(args.driving, host.input_dir / name)
            inputs["stableanimator_driving.mp4"] = name
        prompt = build_prompt(ui_to_api(json.loads(WORKFLOW.read_text()), host.object_info()), names, size, frames,
                              steps, random, inputs)
        print(f"[demo] running {WORKFLOW.name}: {frames or 'all'} frames, long side {size}, {steps} steps", flush=True)
        outputs = host.run(prompt, timeout=3600)
    files = [out / img["subfolder"] / img["filename"] for o in outputs.values() for img in o.get("images", [])
             if img.get("type") == "output"]
    for f in files:
        print(f"[demo] wrote {f}")
    videos = {f: describe(f) for f in files if f.suffix == ".mp4"}
    for f, what in videos.items():
        print(f"[demo] {f.name}: {what}")
    if random:
        print("[demo] identity plot: written only with the real antelopev2 files (the random stand-in detector finds "
              "no face in the noise the random weights generate)")
    print(f"[demo] output folder: {out}")
    return 0 if videos and all("audio aac" in what for what in videos.values()) else 1


def describe(path: Path) -> str:
    """What the mp4 holds, read back with PyAV: its streams, frames, frame rate and length."""
    import av
    with av.open(str(path)) as c:
        parts = []
        for s in c.streams:
            if s.type == "video":
                n = sum(1 for _ in c.decode(s))
                parts.append(f"video {s.codec_context.name} {s.codec_context.width}x{s.codec_context.height}, "
                             f"{n} frames at {float(s.average_rate):g} fps")
    with av.open(str(path)) as c:
        for s in c.streams:
            if s.type == "audio":
                samples = sum(f.samples for f in c.decode(s))
                parts.append(f"audio {s.codec_context.name} {s.sample_rate} Hz, {samples / s.sample_rate:.2f} s")
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
