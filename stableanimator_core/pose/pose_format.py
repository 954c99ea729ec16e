"""Poses in memory and in the OpenPose-JSON shape that comfyui_controlnet_aux calls POSE_KEYPOINT.

In memory a frame is a `PoseFrame`: the canvas size and an (N,134,3) array of [x, y, score] per person
in canvas pixels, in the official DWPose layout (dwpose_detector.py:43-49):
    0-17 body (OpenPose order: 0 nose, 1 neck, 2-4 right arm, 5-7 left arm, 8-10 right leg,
    11-13 left leg, 14/15 eyes, 16/17 ears), 18-23 feet, 24-91 face (68),
    92-112 left hand (21), 113-133 right hand (21).

POSE_KEYPOINT (comfyui_controlnet_aux, src/custom_controlnet_aux/dwpose/__init__.py encode_poses_as_dict
and wholebody.py format_result) is a list with one dict per frame:
    {"people": [{"pose_keypoints_2d": [x,y,c]*18, "face_keypoints_2d": [x,y,c]*70,
                 "hand_left_keypoints_2d": [x,y,c]*21, "hand_right_keypoints_2d": [x,y,c]*21}],
     "canvas_width": W, "canvas_height": H}
aux writes pixel coordinates, c = 1.0 for a point with score >= 0.3 and [0,0,0] otherwise, None for a part
with no point at all, and 70 face points (the 68 DWPose points then the two eyes, body points 14 and 15).
Its readers treat c < 1.0 as missing and accept normalised (0..1) coordinates too.

Units are decided per frame, never per person: a frame's coordinates are fractions of its canvas when every
present point of the frame lies within NORMALISED_LIMIT of the origin while the canvas is larger than that (a
skeleton in pixels cannot fit in a 4-pixel corner of a real canvas), else pixels. So hips a little below the
frame (y = 1.1) keep a normalised pose normalised, and a list joined from two sources (fraction frames and
pixel frames) reads each frame in its own units; the log names the frames of each kind. A point with a NaN or
infinite value is a missing point.

We write exactly that, so aux's nodes read our poses, plus one extra key per person,
"stableanimator_wholebody_2d": all 134 [x, y, score] with the raw scores, because the official renderer
scales colours by the scores and draws hands and faces below 0.3. On reading, that key is used only when
it agrees with the standard fields (a node that edited the standard fields and kept our key loses it).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import StableAnimatorError

log = logging.getLogger("StableAnimator")

NUM_POINTS = 134
BODY = slice(0, 18)
FEET = slice(18, 24)
FACE = slice(24, 92)
LEFT_HAND = slice(92, 113)
RIGHT_HAND = slice(113, 134)
PRESENT = 0.3  # aux keeps a point when score >= 0.3 (wholebody.py format_result)
RAW_KEY = "stableanimator_wholebody_2d"
PARTS = {"pose_keypoints_2d": BODY, "face_keypoints_2d": FACE,
         "hand_left_keypoints_2d": LEFT_HAND, "hand_right_keypoints_2d": RIGHT_HAND}
NORMALISED_LIMIT = 4.0  # fractions may reach 4 canvas sizes out (limbs far outside the frame)


def drop_invalid(points: np.ndarray) -> np.ndarray:
    """(..., 3) [x, y, score] with any NaN or infinite value -> [0, 0, 0], a missing point."""
    bad = ~np.isfinite(points).all(-1)
    if bad.any():
        points = points.copy()
        points[bad] = 0
    return points


@dataclass
class PoseFrame:
    width: int
    height: int
    people: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_POINTS, 3), np.float32))

    def __post_init__(self):
        if self.people is None:
            self.people = np.zeros((0, NUM_POINTS, 3), np.float32)
        self.people = drop_invalid(np.asarray(self.people, dtype=np.float32).reshape(-1, NUM_POINTS, 3))

    @property
    def empty(self) -> bool:
        return self.people.shape[0] == 0


def _part_to_list(points: np.ndarray) -> list[float] | None:
    keep = points[:, 2] >= PRESENT
    if not keep.any():
        return None
    out = []
    for (x, y, _), k in zip(points, keep):
        out += [float(x), float(y), 1.0] if k else [0.0, 0.0, 0.0]
    return out


def person_to_dict(person: np.ndarray) -> dict:
    d = {name: _part_to_list(person[part]) for name, part in PARTS.items()}
    if d["pose_keypoints_2d"] is None:
        d["pose_keypoints_2d"] = [0.0] * 54  # aux writes a body of 18 missing points, never None
    if d["face_keypoints_2d"] is not None:  # 68 DWPose points + the eyes, as aux does
        for eye in (14, 15):
            x, y, s = person[eye]
            d["face_keypoints_2d"] += [float(x), float(y), 1.0] if s >= PRESENT else [0.0, 0.0, 0.0]
    d[RAW_KEY] = [float(v) for v in person.reshape(-1)]
    return d


def to_pose_keypoint(frames: list[PoseFrame]) -> list[dict]:
    return [{"people": [person_to_dict(p) for p in f.people],
             "canvas_width": int(f.width), "canvas_height": int(f.height)} for f in frames]


def _points(values, n: int) -> np.ndarray | None:
    if not values:
        return None
    arr = np.asarray(values, dtype=np.float32).reshape(-1)
    if arr.size % 3:
        raise StableAnimatorError(f"a POSE_KEYPOINT part has {arr.size} numbers, not a multiple of 3 (x, y, confidence)")
    arr = drop_invalid(arr.reshape(-1, 3))
    if arr.shape[0] < n:
        arr = np.concatenate([arr, np.zeros((n - arr.shape[0], 3), np.float32)])
    return arr[:n]


def person_from_dict(d: dict, width: int, height: int, normalised: bool = False) -> np.ndarray:
    person = np.zeros((NUM_POINTS, 3), np.float32)
    for name, part in PARTS.items():
        pts = _points(d.get(name), part.stop - part.start)
        if pts is not None:
            person[part] = pts
    # aux-style confidences are 0 or 1; absent points sit at (0,0) with c = 0
    if normalised:
        person[:, 0] *= width
        person[:, 1] *= height
    raw = d.get(RAW_KEY)
    if raw is not None and len(raw) == NUM_POINTS * 3:
        raw = drop_invalid(np.asarray(raw, np.float32).reshape(NUM_POINTS, 3))
        shown = person[:, 2] > 0
        if np.allclose(raw[shown, :2], person[shown, :2], atol=0.5) and np.all(raw[shown, 2] >= PRESENT):
            return raw
    return person


def frame_units(fd: dict) -> str | None:
    """The unit rule above for one frame: "fractions", "pixels", or None when no point is present."""
    peak = 0.0
    for p in fd.get("people") or []:
        for name, part in PARTS.items():
            pts = _points(p.get(name), part.stop - part.start)
            if pts is not None and (pts[:, 2] > 0).any():
                peak = max(peak, float(np.abs(pts[pts[:, 2] > 0, :2]).max()))
    if peak == 0:
        return None
    canvas = min(int(fd["canvas_width"]), int(fd["canvas_height"]))
    return "fractions" if peak <= NORMALISED_LIMIT < canvas else "pixels"


def _frame_list(frames: list[int]) -> str:
    return ", ".join(map(str, frames[:12])) + (f" ... ({len(frames)} frames)" if len(frames) > 12 else "")


def from_pose_keypoint(data) -> list[PoseFrame]:
    """POSE_KEYPOINT (a list of frame dicts, or one dict) -> PoseFrames in pixel coordinates."""
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, (list, tuple)):
        raise StableAnimatorError(f"expected POSE_KEYPOINT (a list of OpenPose frame dicts), got {type(data).__name__}")
    for i, fd in enumerate(data):
        if not isinstance(fd, dict) or "canvas_width" not in fd or "canvas_height" not in fd:
            raise StableAnimatorError(f"POSE_KEYPOINT frame {i} lacks canvas_width/canvas_height; "
                                      "connect the output of a DWPose/OpenPose estimator node")
        try:
            size = float(fd["canvas_width"]), float(fd["canvas_height"])
        except (TypeError, ValueError):
            size = (float("nan"),) * 2
        if not all(np.isfinite(v) and v >= 1 for v in size):
            raise StableAnimatorError(f"POSE_KEYPOINT frame {i} has canvas {fd['canvas_width']!r}x{fd['canvas_height']!r}; "
                                      "the canvas size must be whole pixels, at least 1")
    units = [frame_units(fd) for fd in data]
    fractions = [i for i, u in enumerate(units) if u == "fractions"]
    pixels = [i for i, u in enumerate(units) if u == "pixels"]
    if fractions and pixels:
        log.warning("StableAnimator: this POSE_KEYPOINT list mixes units: frame(s) %s hold 0..1 fractions of the "
                    "canvas, frame(s) %s hold pixels; each frame is read in its own units. If the keypoints were "
                    "joined from two sources, check those frames", _frame_list(fractions), _frame_list(pixels))
    frames = []
    for fd, unit in zip(data, units):
        w, h = int(fd["canvas_width"]), int(fd["canvas_height"])
        people = [person_from_dict(p, w, h, unit == "fractions") for p in fd.get("people") or []]
        frames.append(PoseFrame(w, h, np.stack(people) if people else None))
    return frames
