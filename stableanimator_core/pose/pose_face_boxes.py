"""Face boxes per frame from the DWPose face keypoints, as boxes and as filled-rectangle masks.

The official HJB face optimisation reads one rectangle per frame: the bounding box of all white pixels of
a mask PNG at generation size that holds a filled box per detected face, and a whole-white mask when no
face was found (facts brief section 6, face_mask_extraction.py). The author suggests taking those boxes
from the aligned DWPose face keypoints (issue #112). We do that: the union of the 68 face points of every
person with score >= min_score, grown about its centre by `expand`, in pixels of width x height.
"""
from __future__ import annotations

import logging

import numpy as np

from .pose_format import FACE, PoseFrame

log = logging.getLogger("StableAnimator")


def face_box(frame: PoseFrame, width: int, height: int, expand: float = 1.2, min_score: float = 0.3):
    """-> (x0, y0, x1, y1) float pixels of width x height, or None when no face point is visible."""
    if frame.empty:
        return None
    pts = frame.people[:, FACE].reshape(-1, 3)
    pts = pts[pts[:, 2] >= min_score]
    if len(pts) == 0:
        return None
    sx, sy = width / max(frame.width, 1), height / max(frame.height, 1)
    x0, x1 = pts[:, 0].min() * sx, pts[:, 0].max() * sx
    y0, y1 = pts[:, 1].min() * sy, pts[:, 1].max() * sy
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * expand, (y1 - y0) / 2 * expand
    box = np.array([cx - hw, cy - hh, cx + hw, cy + hh], np.float64)
    box[[0, 2]] = box[[0, 2]].clip(0, width)
    box[[1, 3]] = box[[1, 3]].clip(0, height)
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


def face_boxes(frames: list[PoseFrame], width: int, height: int, expand: float = 1.2,
               min_score: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """-> boxes (F,4) float32 x0,y0,x1,y1 and found (F,) bool. A frame without a face gets the whole frame,
    as the official mask script does, and a warning."""
    boxes, found = [], []
    missing = []
    for i, f in enumerate(frames):
        b = face_box(f, width, height, expand, min_score)
        found.append(b is not None)
        if b is None:
            missing.append(i)
            b = np.array([0, 0, width, height], np.float64)
        boxes.append(b)
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        log.warning("StableAnimator face boxes: no face keypoints in frame(s) %s; the whole frame is used there", shown)
    return np.array(boxes, np.float32).reshape(-1, 4), np.array(found, bool)


def boxes_to_masks(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(F,4) boxes -> (F,height,width) float32 masks, 1 on every pixel the box touches."""
    masks = np.zeros((len(boxes), height, width), np.float32)
    for m, (x0, y0, x1, y1) in zip(masks, boxes):
        c0, r0 = int(np.floor(x0)), int(np.floor(y0))
        c1, r1 = int(np.ceil(x1)), int(np.ceil(y1))
        m[max(r0, 0):min(r1, height), max(c0, 0):min(c1, width)] = 1.0
    return masks
