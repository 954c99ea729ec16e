"""Writes the example inputs the shipped workflows name (assets/inputs/), from public-domain material only.

    .host/venv/bin/python scripts/make_example_inputs.py      # rewrites assets/inputs/* and assets/icon.png

- stableanimator_reference.jpg: NASA's portrait of astronaut Eileen Collins, public domain, as scikit-image ships
  it (skimage.data.astronaut()).
- stableanimator_driving.mp4: that photo moved (sway, bob, zoom) frame by frame, as a phone would film it: portrait 9:16 (288x512), 25 fps, 2 s,
  h264 + AAC, with a drum pattern synthesised here (kick, snare, hi-hat and a bass tone; no samples).
- stableanimator_poses.webp / stableanimator_poses_long.webp: skeletons in the official DWPose style, drawn by
  this pack's renderer from keypoints placed by hand on that photo, the right arm waving and the head tilting.
- ../icon.png: the registry icon, that skeleton drawn thick.

Deterministic: the same files every run (no randomness), so a re-run shows no change unless this script did.
"""
import math
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))   # stableanimator_core imports on its own (it never imports ComfyUI)
OUT = REPO / "assets" / "inputs"
SIZE = 512            # the official square size: the pose frames are the video's canvas
FPS = 8
VIDEO_FPS = 25        # the mp4: a phone's frame rate, portrait
VIDEO_SECONDS = 2
VIDEO_SIZE = (288, 512)   # width, height: 9:16, cut from the square photo around the person
AUDIO_RATE = 44100

# Body points on the 512x512 photo, OpenPose order (subject's right = image left); hips and legs are out of frame.
BODY = {0: (222, 121), 1: (218, 214), 2: (112, 252), 3: (62, 380), 4: (150, 490), 5: (330, 262), 6: (372, 400),
        7: (330, 496), 14: (203, 100), 15: (243, 100), 16: (175, 108), 17: (272, 106)}
FACE_BOX = (175, 67, 97, 95)   # x, y, w, h of the 68-point face template below on the photo


def face_template() -> np.ndarray:
    """The 68 face points (iBUG order) in a unit box: jaw, brows, nose, eyes, mouth."""
    t = np.linspace(math.pi, 0, 17)
    jaw = np.stack([0.5 + 0.5 * np.cos(t), 0.35 + 0.65 * np.sin(t)], 1)
    brow = lambda x0: np.stack([np.linspace(x0, x0 + 0.3, 5), 0.2 - 0.04 * np.sin(np.linspace(0, math.pi, 5))], 1)
    nose = np.array([[0.5, 0.32], [0.5, 0.40], [0.5, 0.48], [0.5, 0.56],
                     [0.40, 0.62], [0.45, 0.64], [0.5, 0.65], [0.55, 0.64], [0.60, 0.62]])
    eye = lambda cx: np.array([[cx - 0.08, 0.32], [cx - 0.03, 0.29], [cx + 0.03, 0.29], [cx + 0.08, 0.32],
                               [cx + 0.03, 0.345], [cx - 0.03, 0.345]])
    a = np.linspace(math.pi, 0, 7)
    upper = np.stack([0.5 - 0.15 * np.cos(a), 0.78 - 0.04 * np.sin(a)], 1)          # 48..54, left to right
    lower = np.stack([0.5 + 0.15 * np.cos(a[1:-1]), 0.78 + 0.05 * np.sin(a[1:-1])], 1)  # 55..59, right to left
    b = np.linspace(math.pi, 0, 5)
    inner_up = np.stack([0.5 - 0.1 * np.cos(b), 0.78 - 0.015 * np.sin(b)], 1)      # 60..64
    inner_low = np.stack([0.5 + 0.1 * np.cos(b[1:-1]), 0.78 + 0.02 * np.sin(b[1:-1])], 1)  # 65..67
    points = np.concatenate([jaw, brow(0.12), brow(0.58), nose, eye(0.30), eye(0.70), upper, lower, inner_up, inner_low])
    assert points.shape == (68, 2), points.shape
    return points


def rotate(points: np.ndarray, centre, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    d = points - centre
    return centre + d @ np.array([[c, s], [-s, c]])


def person(phase: float) -> np.ndarray:
    """The 134 x [x, y, score] points at `phase` in [0, 1): the right arm waves, the head tilts, the body sways."""
    from stableanimator_core.pose.pose_format import FACE, NUM_POINTS
    pts = np.zeros((NUM_POINTS, 3), np.float32)
    for i, (x, y) in BODY.items():
        pts[i] = (x, y, 0.9)
    x0, y0, w, h = FACE_BOX
    pts[FACE, :2] = face_template() * (w, h) + (x0, y0)
    pts[FACE, 2] = 0.9
    lift = 0.5 - 0.5 * math.cos(2 * math.pi * phase)          # 0 (arm down) .. 1 (arm up) .. 0
    wave = math.sin(6 * math.pi * phase) * lift                # the hand waves while the arm is up
    pts[3, :2] = (1 - lift) * np.array(BODY[3]) + lift * np.array((48, 236))
    pts[4, :2] = (1 - lift) * np.array(BODY[4]) + lift * np.array((70 + 28 * wave, 120))
    head = [0, 14, 15, 16, 17, *range(FACE.start, FACE.stop)]
    pts[head, :2] = rotate(pts[head, :2], np.array(BODY[1], np.float32), 5 * math.sin(2 * math.pi * phase))
    pts[:, 0] += 8 * math.sin(2 * math.pi * phase)           # sway
    return pts


def pose_frames(count: int, cycles: int = 1) -> np.ndarray:
    from stableanimator_core.pose.pose_format import PoseFrame
    from stableanimator_core.pose.pose_render import render_poses
    frames = [PoseFrame(SIZE, SIZE, person((i * cycles / count) % 1.0)[None]) for i in range(count)]
    return render_poses(frames, SIZE, SIZE)


def icon(size: int = 256) -> Image.Image:
    """The registry icon: the example skeleton, arm raised, in the official limb colours, drawn thick."""
    from PIL import ImageDraw
    from stableanimator_core.pose.pose_render import BODY_COLORS, LIMBS
    pts = person(0.5)
    big = 4   # drawn large, then scaled down: smooth edges
    canvas = Image.new("RGB", (SIZE * big, SIZE * big), (24, 24, 28))
    draw = ImageDraw.Draw(canvas)
    for i, (a, b) in enumerate(LIMBS):
        pa, pb = pts[a - 1], pts[b - 1]
        if pa[2] > 0.3 and pb[2] > 0.3:
            draw.line([tuple(pa[:2] * big), tuple(pb[:2] * big)], fill=BODY_COLORS[i], width=18 * big)
    for j in range(18):
        if pts[j, 2] > 0.3:
            x, y = pts[j, :2] * big
            r = 11 * big
            draw.ellipse([x - r, y - r, x + r, y + r], fill=BODY_COLORS[j])
    box = [0, 40, 420, 460]   # the upper body and the raised arm
    return canvas.crop([v * big for v in box]).resize((size, size), Image.LANCZOS)


def portrait_frames(photo: Image.Image, count: int) -> list[np.ndarray]:
    """The photo swaying, bobbing and zooming, cut to 9:16 around the person (x about 220)."""
    w, h = photo.size
    cw = h * VIDEO_SIZE[0] // VIDEO_SIZE[1]
    left = 222 - cw // 2
    frames = []
    for i in range(count):
        t = 2 * math.pi * i / count
        zoom = 1.0 + 0.06 * math.sin(t)
        dx, dy = 0.05 * w * math.sin(t), 0.03 * h * math.cos(2 * t)
        frame = photo.transform((w, h), Image.AFFINE, (1 / zoom, 0, -dx + w * (1 - 1 / zoom) / 2,
                                                       0, 1 / zoom, -dy + h * (1 - 1 / zoom) / 2), resample=Image.BICUBIC)
        frames.append(np.asarray(frame.crop((left, 0, left + cw, h)).resize(VIDEO_SIZE, Image.LANCZOS)))
    return frames


def drum_track(seconds: float, rate: int = AUDIO_RATE, bpm: float = 120.0) -> np.ndarray:
    """A stereo drum loop made from formulas: kick on every beat, snare (noise) on 2 and 4, hi-hat on the eighths,
    a bass tone following the kick. Seeded noise: the same samples every run. Returns float32 (2, n) in [-1, 1]."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    out = np.zeros(n, np.float64)
    noise = np.random.default_rng(0).standard_normal(n)
    beat = 60.0 / bpm
    for k in range(int(seconds / beat * 2) + 1):   # eighth notes
        start = k * beat / 2
        i0 = int(start * rate)
        if i0 >= n:
            break
        d = t[i0:] - start
        if k % 2 == 0:   # kick: a sine falling from 120 to 45 Hz, and the bass tone
            phase = 2 * math.pi * (45 * d + 75 * (1 - np.exp(-d * 30)) / 30)
            out[i0:] += 0.8 * np.sin(phase) * np.exp(-d * 9)
            out[i0:] += 0.15 * np.sin(2 * math.pi * (55 if (k // 4) % 2 == 0 else 65.4) * d) * np.exp(-d * 4)
            if (k // 2) % 2 == 1:   # snare on beats 2 and 4
                out[i0:] += 0.35 * noise[i0:] * np.exp(-d * 18) + 0.2 * np.sin(2 * math.pi * 190 * d) * np.exp(-d * 15)
        hat = noise[i0:] - np.concatenate([[0], noise[i0:-1]])   # differenced noise: bright
        out[i0:] += 0.08 * hat * np.exp(-d * 60)
    out = np.tanh(out * 1.2) * 0.7
    fade = np.minimum(1, np.minimum(t / 0.01, (seconds - t) / 0.05))
    left, right = out * fade, np.roll(out, 40) * fade   # a touch of width
    return np.stack([left, right]).astype(np.float32)


def save_mp4(path: Path, frames: list[np.ndarray], audio: np.ndarray) -> None:
    """h264 (yuv420p) + AAC in mp4, the way a phone writes it, through PyAV (ComfyUI's own video library)."""
    import av
    from fractions import Fraction
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=VIDEO_FPS)
        video.width, video.height = VIDEO_SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"crf": "28", "preset": "slow", "threads": "1"}   # one thread: the same bytes every run
        sound = out.add_stream("aac", rate=AUDIO_RATE)
        sound.layout = "stereo"
        sound.bit_rate = 96_000
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, VIDEO_FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        block = 1024
        for i in range(0, audio.shape[1], block):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i:i + block]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = AUDIO_RATE, i
            out.mux(sound.encode(frame))
        out.mux(sound.encode())


def save_webp(path: Path, frames, lossless: bool):
    images = [f if isinstance(f, Image.Image) else Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // FPS, loop=0,
                   lossless=lossless, quality=80 if not lossless else 100, method=6)


def main() -> int:
    from skimage import data

    OUT.mkdir(parents=True, exist_ok=True)
    photo = Image.fromarray(data.astronaut())
    photo.save(OUT / "stableanimator_reference.jpg", quality=92)
    count = VIDEO_FPS * VIDEO_SECONDS
    save_mp4(OUT / "stableanimator_driving.mp4", portrait_frames(photo, count), drum_track(VIDEO_SECONDS))
    save_webp(OUT / "stableanimator_poses.webp", pose_frames(16), lossless=True)
    save_webp(OUT / "stableanimator_poses_long.webp", pose_frames(64, cycles=3), lossless=True)
    icon().save(REPO / "assets" / "icon.png", optimize=True)
    for f in sorted(OUT.iterdir()):
        print(f"{f.relative_to(REPO)}  {f.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
