"""YOLOX person detector (DWPose's yolox_l.onnx) on onnxruntime, with the official pre/post-processing.

Facts from the official StableAnimator repo, DWPose/dwpose_utils/onnxdet.py:
- input: the RGB frame (skeleton_extraction.py converts BGR->RGB before detection) letterboxed into
  640x640: scaled by r = min(640/h, 640/w) with cv2 INTER_LINEAR, pasted top-left on a 114-grey canvas,
  CHW float32 in 0..255, no mean/std (onnxdet.py:80-96, 98-102).
- output (1, 8400, 85): per anchor (cx, cy, log w, log h, objectness, 80 class scores); anchors are the
  grid cells of strides 8, 16, 32 in row-major order; cx = (dx + grid_x) * stride, w = exp(dw) * stride
  (onnxdet.py:58-78).
- score = objectness * class score, boxes to xyxy and divided by r; class-aware NMS (IoU 0.45, boxes
  kept above 0.1, areas with the +1 pixel convention), then only class 0 (person) above 0.3
  (onnxdet.py:104-125, 6-33). Class-aware NMS never mixes classes, so running it on class 0 alone
  gives the same persons.
"""
from __future__ import annotations

import cv2
import numpy as np

INPUT_SIZE = (640, 640)  # (h, w)
STRIDES = (8, 16, 32)
PAD_VALUE = 114
NMS_IOU = 0.45
SCORE_THR = 0.1
PERSON_THR = 0.3


def open_session(path: str, providers: list[str]):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=providers)


def letterbox(image: np.ndarray, size: tuple[int, int] = INPUT_SIZE) -> tuple[np.ndarray, float]:
    """uint8 (H,W,3) -> float32 (3,h,w) on a grey canvas, and the resize ratio r."""
    h, w = image.shape[:2]
    r = min(size[0] / h, size[1] / w)
    nh, nw = int(h * r), int(w * r)
    canvas = np.full((size[0], size[1], 3), PAD_VALUE, dtype=np.uint8)
    if nh > 0 and nw > 0:
        canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32), r


def anchor_grid(size: tuple[int, int] = INPUT_SIZE, strides=STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """(A,2) cell offsets (x, y) and (A,1) strides, in the order YOLOX flattens its three heads."""
    cells, steps = [], []
    for s in strides:
        gy, gx = np.meshgrid(np.arange(size[0] // s), np.arange(size[1] // s), indexing="ij")
        cells.append(np.stack([gx.ravel(), gy.ravel()], 1))
        steps.append(np.full((gx.size, 1), s))
    return np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)


def decode_outputs(raw: np.ndarray, size: tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """(A,85) raw head output -> (A,85) with pixel centres and sizes in the 640x640 input."""
    out = np.array(raw, dtype=np.float32, copy=True)
    cells, steps = anchor_grid(size)
    if out.shape[0] != cells.shape[0]:
        raise ValueError(f"detector gave {out.shape[0]} anchors, expected {cells.shape[0]} for a {size} input")
    out[:, :2] = (out[:, :2] + cells) * steps
    out[:, 2:4] = np.exp(out[:, 2:4]) * steps
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float = NMS_IOU) -> list[int]:
    """Greedy NMS, highest score first; areas count the end pixel (+1) as the official code does."""
    x0, y0, x1, y1 = boxes.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = iw * ih
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_thr]
    return keep


def postprocess(raw: np.ndarray, ratio: float, size: tuple[int, int] = INPUT_SIZE,
                score_thr: float = SCORE_THR, person_thr: float = PERSON_THR,
                iou_thr: float = NMS_IOU) -> tuple[np.ndarray, np.ndarray]:
    """(A,85) raw output -> person boxes (K,4) xyxy in original pixels and their scores (K,), best first."""
    pred = decode_outputs(raw, size)
    cx, cy, w, h = pred[:, 0], pred[:, 1], pred[:, 2], pred[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1) / ratio
    scores = pred[:, 4] * pred[:, 5]  # objectness x person class
    valid = scores > score_thr
    if not valid.any():
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    boxes, scores = boxes[valid], scores[valid]
    keep = nms(boxes, scores, iou_thr)
    boxes, scores = boxes[keep], scores[keep]
    person = scores > person_thr
    return boxes[person].astype(np.float32), scores[person].astype(np.float32)


class PersonDetector:
    """yolox_l.onnx: uint8 RGB frame -> person boxes."""

    def __init__(self, session):
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape[2:]
        self.size = tuple(int(s) if isinstance(s, int) else d for s, d in zip(shape, INPUT_SIZE)) \
            if len(shape) == 2 else INPUT_SIZE

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        blob, ratio = letterbox(image, self.size)
        raw = self.session.run(None, {self.input_name: blob[None]})[0]
        return postprocess(raw[0], ratio, self.size)
