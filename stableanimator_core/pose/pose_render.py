"""The official training-style pose image (DWPose/skeleton_extraction.py:16-135, identical in
training_skeleton_extraction.py:19-114).

- The canvas is drawn large: its short side is ref_w = 2160 (scale sr = 2160 / min(H, W)), then resized
  to W x H with cv2's default bilinear filter, so sticks end up about one pixel wide (:120-135).
- Body (:16-59): 17 limbs (the ear-shoulder pairs of the 19-entry sequence are not drawn), each a filled
  ellipse polygon from cv2.ellipse2Poly with half-axes (length / 2, 4) at the limb angle, coloured
  colour x conf_a x conf_b, skipped when a confidence is < 0.3. Then the whole canvas is multiplied by 0.6,
  and the 18 joints with score > 0.3 are drawn as radius-4 discs of colour x score.
- Hands (:61-88): all 20 edges, no score threshold, 2-pixel lines in hue edge/20 (full saturation and
  value) x int(score_a x score_b x 255); joints are radius-4 discs (0, 0, int(score x 255)); anything with a
  pixel coordinate of 0 or less is skipped.
- Face (:90-100): radius-3 grey discs of int(score x 255).
- Colours: the official canvas is converted BGR->RGB and then written with cv2.imwrite, which swaps the
  channels back, so the PNG files the model was trained and run on carry the colour lists as RGB (see the
  facts brief, section 11.7). We therefore draw the lists straight into an RGB canvas.
"""
from __future__ import annotations

import colorsys
import math

import cv2
import numpy as np

from .pose_format import BODY, FACE, LEFT_HAND, RIGHT_HAND, PoseFrame

REF_W = 2160
STICK_WIDTH = 4
EPS = 0.01
LIMBS = [(2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
         (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18)]  # 1-based, the 17 drawn limbs
BODY_COLORS = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
               (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255),
               (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85)]
HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11),
              (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20)]
BODY_LIMB_THR = 0.3
BODY_JOINT_THR = 0.3
MAX_ASPECT = 8        # the 2160-px short side makes the long side 2160 x aspect: 8 keeps a frame's canvas near 112 MB
OFF_CANVAS = 10.0     # points further than this many canvas sizes away are drawn at that distance (cv2 needs int32)


def canvas_problem(width: int, height: int) -> str | None:
    """Why width x height cannot be drawn the official way, or None."""
    if width < 1 or height < 1:
        return f"the pose image size {width}x{height} is empty"
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        gb = REF_W * REF_W * aspect * 3 / 1e9
        return (f"width x height = {width}x{height} is {aspect:.0f} times wider than high (or higher than wide): the "
                f"official renderer draws on a canvas with a {REF_W} px short side, which would take {gb:.1f} GB per "
                f"frame. Keep the sides within {MAX_ASPECT}x of each other (the official sizes are 512x512 and 576x1024)")
    return None


def _scaled(color, alpha) -> tuple[int, int, int]:
    return tuple(int(c * alpha) for c in color)


def hand_edge_color(i: int) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(i / float(len(HAND_EDGES)), 1.0, 1.0)


def draw_body(canvas: np.ndarray, bodies: np.ndarray) -> np.ndarray:
    """bodies: (N,18,3) with x, y normalised to the canvas."""
    H, W = canvas.shape[:2]
    for i, (a, b) in enumerate(LIMBS):
        for body in bodies:
            pa, pb = body[a - 1], body[b - 1]
            if pa[2] < BODY_LIMB_THR or pb[2] < BODY_LIMB_THR:
                continue
            xa, ya, xb, yb = pa[0] * W, pa[1] * H, pb[0] * W, pb[1] * H
            length = math.hypot(xa - xb, ya - yb)
            angle = math.degrees(math.atan2(ya - yb, xa - xb))
            poly = cv2.ellipse2Poly((int((xa + xb) / 2), int((ya + yb) / 2)), (int(length / 2), STICK_WIDTH),
                                    int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, poly, _scaled(BODY_COLORS[i], float(pa[2]) * float(pb[2])))
    canvas = (canvas * 0.6).astype(np.uint8)
    for j in range(18):
        for body in bodies:
            x, y, s = body[j]
            if s <= BODY_JOINT_THR:
                continue
            cv2.circle(canvas, (int(x * W), int(y * H)), 4, _scaled(BODY_COLORS[j], float(s)), thickness=-1)
    return canvas


def draw_hands(canvas: np.ndarray, hands: np.ndarray) -> np.ndarray:
    """hands: (M,21,3) normalised."""
    H, W = canvas.shape[:2]
    for hand in hands:
        for i, (a, b) in enumerate(HAND_EDGES):
            x1, y1 = int(hand[a, 0] * W), int(hand[a, 1] * H)
            x2, y2 = int(hand[b, 0] * W), int(hand[b, 1] * H)
            score = int(hand[a, 2] * hand[b, 2] * 255)
            if x1 > EPS and y1 > EPS and x2 > EPS and y2 > EPS:
                color = tuple(c * score for c in hand_edge_color(i))
                cv2.line(canvas, (x1, y1), (x2, y2), color, thickness=2)
        for x, y, s in hand:
            x, y = int(x * W), int(y * H)
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), 4, (0, 0, int(s * 255)), thickness=-1)
    return canvas


def draw_face(canvas: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """faces: (N,68,3) normalised."""
    H, W = canvas.shape[:2]
    for face in faces:
        for x, y, s in face:
            x, y = int(x * W), int(y * H)
            c = int(s * 255)
            if x > EPS and y > EPS:
                cv2.circle(canvas, (x, y), 3, (c, c, c), thickness=-1)
    return canvas


def render_pose(frame: PoseFrame, width: int, height: int, ref_w: int = REF_W,
                body: bool = True, hands: bool = True, face: bool = True) -> np.ndarray:
    """One PoseFrame -> uint8 RGB (height, width, 3). Coordinates are taken relative to the frame's canvas,
    so a pose is stretched onto width x height as the official script draws it on the reference size."""
    sz = min(height, width)
    sr = ref_w / sz if sz != ref_w else 1
    canvas = np.zeros((int(height * sr), int(width * sr), 3), dtype=np.uint8)
    people = frame.people.astype(np.float64).copy()
    people[..., 0] /= max(frame.width, 1)
    people[..., 1] /= max(frame.height, 1)
    people[..., :2] = people[..., :2].clip(-OFF_CANVAS, OFF_CANVAS)
    if body:
        canvas = draw_body(canvas, people[:, BODY])
    if hands:
        # official order: every left hand, then every right hand (dwpose_detector.py:45-46)
        canvas = draw_hands(canvas, np.concatenate([people[:, LEFT_HAND], people[:, RIGHT_HAND]]))
    if face:
        canvas = draw_face(canvas, people[:, FACE])
    return cv2.resize(canvas, (width, height))


def render_poses(frames: list[PoseFrame], width: int, height: int, **kwargs) -> np.ndarray:
    """PoseFrames -> uint8 (F, height, width, 3)."""
    if not frames:
        return np.zeros((0, height, width, 3), np.uint8)
    return np.stack([render_pose(f, width, height, **kwargs) for f in frames])
