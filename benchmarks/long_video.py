"""Peak memory and time per frame against the driving clip's length, end to end at toy size on the CPU:
Video Frames (a 30 fps clip with audio, read at 64x64) -> Extract Poses (DWPose stand-in onnx nets of the real
signatures) -> Render Poses -> Conditioning -> Sampler (tiny official-format UNet, official windows 16/4, 2 steps)
-> Decode Video (small SVD temporal decoder, chunk 4) -> Create Video's input. Each length runs in its own child
process; memory is the child's peak RSS (ru_maxrss) above its baseline after imports and model loading, sampled
after each stage. A benchmark, not a test: it prints a table.

    .host/venv/bin/python benchmarks/long_video.py [--frames 64 256 512] [--size 64]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]

CHILD = r"""
import json, resource, sys, time
sys.path[:0] = {paths!r}
import torch
from importlib import import_module
from comfy_host import import_comfy, import_pack
import_comfy(cpu=True)
pack = import_pack("sa_pack")
from fixtures import e2e_models as e2e
from fixtures.official_weights import write_official_set
from fixtures.official_reference import FakeClipVision, FakeVAE, FakeFaceEmbed
from fixtures.hjb_models import svd_vae
folder, clip, size = {folder!r}, {clip!r}, {size}
N = lambda m: import_module("sa_pack.nodes." + m)
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
from pathlib import Path
folder = Path(folder)
if not (folder / "unet.pth").exists():
    write_official_set(folder)
if not (folder / e2e.DET).exists():
    e2e._write_dwpose(folder)
dwpose = import_module("sa_pack.stableanimator_core.pose.dwpose_estimate").load_dwpose(
    str(folder / e2e.DET), str(folder / e2e.POSE), ["CPUExecutionProvider"])
model, animator = N("loading").load_animator(str(folder / "unet.pth"), str(folder / "pose_net.pth"),
                                             str(folder / "face_encoder.pth"), "fp32")
model = N("patching").apply_stableanimator(model, animator, window=16, overlap=4)
vae = svd_vae(small=True, seed=1)
g = torch.Generator().manual_seed(0)
base = rss()
times, peaks = {{}}, {{}}
def stage(name, fn):
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = fn()
    times[name] = time.perf_counter() - t0
    peaks[name] = rss() - base
    return out
vf = N("video").StableAnimatorVideoFrames
frames, fps, audio, n, w, h = stage("read", lambda: tuple(vf.execute(
    video=type("V", (), {{"get_stream_source": lambda self: clip}})(), width=size, height=size,
    size="width x height", fit="stretch (official)", fps=0.0, start_time=0.0, duration=0.0, frame_cap=0).result))
kp = stage("poses", lambda: N("pose").StableAnimatorPoseExtract.execute(dwpose=dwpose, images=frames).result[0])
poses = stage("render", lambda: N("pose").StableAnimatorPoseRender.execute(
    pose_keypoint=kp, width=w, height=h, body=True, hands=True, face=True).result[0])
pos, neg, latent = stage("conditioning", lambda: N("conditioning").build_conditioning(
    FakeClipVision(torch.randn(1, 1024, generator=g)), FakeVAE(torch.randn(1, 4, h // 8, w // 8, generator=g), h, w),
    animator, FakeFaceEmbed(torch.randn(1, 512, generator=g)), torch.rand(1, h, w, 3, generator=g), poses, w, h, 0,
    7, 127, 0.02, 0))
samples = stage("sample", lambda: N("sampling").run_sampler(model, pos, neg, latent, 0, 2, 1.0, 2.5, "euler",
                                                             "karras", 1.0))
video = stage("decode", lambda: N("sampling").StableAnimatorDecode.execute(vae=vae, latent=samples, chunk=4).result[0])
assert video.shape[0] == n and torch.isfinite(video).all()
print(json.dumps(dict(frames=n, times=times, peaks=peaks, base=base,
                      output_mib=(video.numel() * 4 + audio["waveform"].numel() * 4) / 2**20)))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, nargs="+", default=[64, 256, 512])
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    from fixtures.video_clips import write_clip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in args.frames:
            clip = write_clip(tmp / f"drive_{n}.mp4", width=160, height=96, fps=30, frames=n)
            code = CHILD.format(paths=[str(REPO), str(REPO / "tests"), str(REPO / "scripts")], folder=str(tmp / "w"),
                                clip=str(clip), size=args.size)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if out.returncode:
                sys.exit(out.stderr[-4000:])
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"{n} frames done", file=sys.stderr)
    stages = list(rows[0]["times"])
    print(f"\nToy size {args.size}x{args.size}, CPU, 2 sampling steps, windows 16/4, decode chunk 4.\n")
    print("| frames | " + " | ".join(f"{s} ms/frame" for s in stages) + " | total ms/frame | peak MiB above "
          "baseline (after read / poses / sample / decode) | output MiB (frames + audio) | baseline MiB |")
    print("|---" * (len(stages) + 5) + "|")
    for r in rows:
        n = r["frames"]
        per = [r["times"][s] / n * 1000 for s in stages]
        p = r["peaks"]
        print(f"| {n} | " + " | ".join(f"{v:.1f}" for v in per) + f" | {sum(per):.1f} | "
              f"{p['read']:.0f} / {p['poses']:.0f} / {p['sample']:.0f} / {p['decode']:.0f} | "
              f"{r['output_mib']:.1f} | {r['base']:.0f} |")


if __name__ == "__main__":
    main()
