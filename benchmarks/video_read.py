"""Reading a phone-shaped clip (1080x1920, 30 fps, with audio): core Get Video Components (every frame at full
resolution as float32) against the pack's Video Frames reader (each frame resized as it is decoded). Each reader
runs in a child process; the table gives the child's peak resident memory above its own baseline after imports
(ru_maxrss), the time, and both scaled linearly to a 15 s and a 60 s clip. A benchmark, not a test.

    .host/venv/bin/python benchmarks/video_read.py [--seconds 3] [--keep /tmp/clip.mp4]
    .host/venv/bin/python benchmarks/video_read.py --width 3840 --height 2160 --fps 60 --seconds 1 --no-core
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]

CHILD = r"""
import json, resource, sys, time
sys.path[:0] = {paths!r}
import torch, av, numpy
reader, path = {reader!r}, {path!r}
if reader == "core":
    from comfy_host import read_host_env
    sys.path.insert(0, read_host_env()[1])
    from comfy_api.latest._input_impl.video_types import VideoFromFile
else:
    from stableanimator_core.video import read_video
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
if reader == "core":
    c = VideoFromFile(path).get_components()
    n, shape = c.images.shape[0], tuple(c.images.shape[1:3])
else:
    w, h = {size}
    r = read_video(path, w, h, size="follow video aspect", fit="stretch")
    n, shape = r.frames.shape[0], tuple(r.frames.shape[1:3])
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(frames=n, shape=shape, seconds=dt, peak_mib=(peak - base) / 1024)))
"""


def run_child(reader, path, size=(512, 512)):
    code = CHILD.format(paths=[str(REPO), str(REPO / "tests"), str(REPO / "scripts")], reader=reader,
                        path=str(path), size=size)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--keep", help="write the clip here (and reuse it if present)")
    ap.add_argument("--width", type=int, default=1080)
    ap.add_argument("--height", type=int, default=1920)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--no-core", action="store_true", help="skip core's reader (a 4K clip would not fit)")
    args = ap.parse_args()
    from fixtures.video_clips import write_clip
    import numpy as np

    tmp = tempfile.TemporaryDirectory()
    path = Path(args.keep or Path(tmp.name) / "phone.mp4")
    n = int(round(args.seconds * args.fps))
    if not path.exists():
        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)
        t0 = time.perf_counter()
        write_clip(path, width=args.width, height=args.height, fps=args.fps, frames=n, click=min(1.0, n / args.fps / 2),
                   pattern=lambda i: np.roll(base, 8 * i, axis=1))
        print(f"wrote {n} frames {args.width}x{args.height} in {time.perf_counter() - t0:.1f} s: {path}")
    rows = [] if args.no_core else [("core Get Video Components", run_child("core", path))]
    rows += [("Video Frames, 512 long side (follow aspect)", run_child("pack", path, (512, 512))),
             ("Video Frames, 1024 long side (follow aspect)", run_child("pack", path, (1024, 1024)))]
    print(f"\n{n} frames {args.width}x{args.height} at {args.fps} fps ({args.seconds:g} s), peak RSS above the "
          f"child's baseline:\n")
    print("| reader | frames | size | time s | peak MiB | MiB per frame | 15 s clip: GiB / s | 60 s clip: GiB / s |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        per = r["peak_mib"] / r["frames"]
        sec = r["seconds"] / r["frames"]
        print(f"| {name} | {r['frames']} | {r['shape'][1]}x{r['shape'][0]} | {r['seconds']:.2f} | "
              f"{r['peak_mib']:.0f} | {per:.1f} | {per * 450 / 1024:.1f} / {sec * 450:.0f} | "
              f"{per * 1800 / 1024:.1f} / {sec * 1800:.0f} |")
    print("(15 s and 60 s columns: per-frame figures times 450 and 1800 frames, i.e. at 30 fps)")


if __name__ == "__main__":
    main()
