"""Whole-body keypoints (DWPose's dw-ll_ucoco_384.onnx, an RTMPose-l SimCC model) on onnxruntime.

Facts from the official StableAnimator repo, DWPose/dwpose_utils/:
- each person box (x0,y0,x1,y1) becomes centre + size x 1.25 (onnxpose.py:35, 115-146), the size is
  widened to the model's aspect w/h = 288/384 (onnxpose.py:149-164, 274), and the box is warped with
  rotation 0 into the 288x384 input with cv2 INTER_LINEAR (onnxpose.py:201-285). With rotation 0 that
  warp is a uniform scale k = 288 / box width that maps the box centre to the input centre.
- normalisation of the RGB crop: (x - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375] (onnxpose.py:41-43).
- outputs simcc_x (1,133,576) and simcc_y (1,133,768); decoding takes the argmax of each vector, the
  score is the smaller of the two maxima, a location whose score is <= 0 becomes -1, and locations are
  divided by the split ratio 2.0 (onnxpose.py:288-350); then back to the image:
  p / (288, 384) * size + centre - size / 2 (onnxpose.py:108).
- when the detector finds nobody the official code runs the pose model on the whole frame
  (onnxpose.py:25-26); this port returns no person instead (and the caller warns).
- the 133 COCO-WholeBody points get a neck (mean of the shoulders, score 1 when both shoulder scores
  are > 0.3, else 0) inserted at 17, and the first 18 are reordered to OpenPose order
  (wholebody.py:24-42). Result per person: 134 points = 18 body, 6 feet, 68 face, 21 left hand,
  21 right hand (dwpose_detector.py:43-49).
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

from .dwpose_detect import PersonDetector

log = logging.getLogger("StableAnimator")

MODEL_INPUT = (288, 384)  # (w, h)
MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
SPLIT_RATIO = 2.0
BOX_PADDING = 1.25
NUM_WHOLEBODY = 133
# OpenPose body order <- COCO order after the neck was inserted at 17 (wholebody.py:34-41).
MMPOSE_IDX = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3]
OPENPOSE_IDX = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]


def box_center_size(box: np.ndarray, padding: float = BOX_PADDING,
                    aspect: float = MODEL_INPUT[0] / MODEL_INPUT[1]) -> tuple[np.ndarray, np.ndarray]:
    """xyxy box -> centre (2,) and padded size (2,) widened to the model aspect w/h."""
    x0, y0, x1, y1 = [float(v) for v in box]
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2], dtype=np.float32)
    w, h = (x1 - x0) * padding, (y1 - y0) * padding
    if w > h * aspect:
        size = np.array([w, w / aspect], dtype=np.float32)
    else:
        size = np.array([h * aspect, h], dtype=np.float32)
    return center, size


def crop_matrix(center: np.ndarray, size: np.ndarray, out_size=MODEL_INPUT) -> np.ndarray:
    """2x3 affine matrix: image -> model input (uniform scale, centre to centre, no rotation)."""
    k = out_size[0] / float(size[0])
    return np.array([[k, 0.0, out_size[0] / 2 - k * center[0]],
                     [0.0, k, out_size[1] / 2 - k * center[1]]], dtype=np.float64)


def preprocess(image: np.ndarray, box: np.ndarray, out_size=MODEL_INPUT):
    """uint8 RGB frame + box -> (1,3,h,w) float32 model input, centre, size."""
    center, size = box_center_size(box, aspect=out_size[0] / out_size[1])
    crop = cv2.warpAffine(image, crop_matrix(center, size, out_size), (int(out_size[0]), int(out_size[1])),
                          flags=cv2.INTER_LINEAR)
    x = (crop.astype(np.float32) - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), center, size


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = SPLIT_RATIO):
    """(K,Wx), (K,Wy) SimCC vectors -> (K,2) locations in model-input pixels and (K,) scores."""
    xi = np.argmax(simcc_x, axis=-1)
    yi = np.argmax(simcc_y, axis=-1)
    scores = np.minimum(np.max(simcc_x, axis=-1), np.max(simcc_y, axis=-1)).astype(np.float32)
    locs = np.stack([xi, yi], -1).astype(np.float32)
    locs[scores <= 0] = -1
    return locs / split_ratio, scores


def to_image_coords(locs: np.ndarray, center: np.ndarray, size: np.ndarray, out_size=MODEL_INPUT) -> np.ndarray:
    return locs / np.asarray(out_size, np.float32) * size + center - size / 2


def to_openpose_order(keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(N,133,2) + (N,133) COCO-WholeBody -> (N,134,3) [x, y, score] with a neck and OpenPose body order."""
    info = np.concatenate([keypoints, scores[..., None]], -1)
    neck = info[:, [5, 6]].mean(1)
    neck[:, 2] = np.logical_and(info[:, 5, 2] > 0.3, info[:, 6, 2] > 0.3).astype(np.float32)
    out = np.insert(info, 17, neck, axis=1)
    out[:, OPENPOSE_IDX] = out[:, MMPOSE_IDX]
    return out.astype(np.float32)


class WholeBodyEstimator:
    """dw-ll_ucoco_384.onnx: frame + person boxes -> (N,133,2) keypoints and (N,133) scores."""

    def __init__(self, session):
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        h, w = inp.shape[2:]
        self.input_size = (int(w) if isinstance(w, int) else MODEL_INPUT[0],
                           int(h) if isinstance(h, int) else MODEL_INPUT[1])
        names = [o.name for o in session.get_outputs()]
        self.output_names = (["simcc_x", "simcc_y"] if {"simcc_x", "simcc_y"} <= set(names) else names[:2])

    def __call__(self, image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kps, scs = [], []
        for box in boxes:
            x, center, size = preprocess(image, box, self.input_size)
            sx, sy = self.session.run(self.output_names, {self.input_name: x})
            locs, scores = decode_simcc(sx[0], sy[0])
            kps.append(to_image_coords(locs, center, size, self.input_size))
            scs.append(scores)
        if not kps:
            return np.zeros((0, NUM_WHOLEBODY, 2), np.float32), np.zeros((0, NUM_WHOLEBODY), np.float32)
        return np.stack(kps).astype(np.float32), np.stack(scs).astype(np.float32)


class DWPose:
    """The two DWPose networks: uint8 RGB frame (H,W,3) -> (N,134,3) people in pixel coordinates."""

    def __init__(self, det_session, pose_session, det_name: str = "", pose_name: str = ""):
        self.detector = PersonDetector(det_session)
        self.estimator = WholeBodyEstimator(pose_session)
        self.names = (det_name, pose_name)

    def __call__(self, image: np.ndarray, frame_index: int | None = None) -> np.ndarray:
        if image.dtype != np.uint8:
            raise TypeError("DWPose expects a uint8 RGB frame")
        boxes, _ = self.detector(image)
        if len(boxes) == 0:
            where = f"frame {frame_index}" if frame_index is not None else "the image"
            log.warning("StableAnimator pose: no person detected in %s; its skeleton is empty", where)
            return np.zeros((0, NUM_WHOLEBODY + 1, 3), np.float32)
        kps, scores = self.estimator(image, boxes)
        return to_openpose_order(kps, scores)


DETECTOR_FILE = "yolox_l.onnx"
POSE_FILE = "dw-ll_ucoco_384.onnx"


def load_dwpose(det_path: str, pose_path: str, providers: list[str]) -> DWPose:
    """Open both onnx files; a file that is not the expected network is a StableAnimatorError."""
    import os

    from .dwpose_detect import open_session
    from ..errors import StableAnimatorError

    sessions = []
    for path, want_out, role in ((det_path, 1, "person detector (yolox_l.onnx)"),
                                 (pose_path, 2, "whole-body pose model (dw-ll_ucoco_384.onnx)")):
        try:
            sess = open_session(path, providers)
        except Exception as e:  # onnxruntime raises its own types for unreadable files
            raise StableAnimatorError(f"could not open {os.path.basename(path)} as the {role}: {e}") from e
        ins, outs = sess.get_inputs(), sess.get_outputs()
        if len(ins) != 1 or len(ins[0].shape) != 4 or len(outs) < want_out:
            raise StableAnimatorError(f"{os.path.basename(path)} does not look like the {role}: it has inputs "
                                      f"{[(i.name, i.shape) for i in ins]} and outputs {[(o.name, o.shape) for o in outs]}")
        sessions.append(sess)
    return DWPose(*sessions, det_name=os.path.basename(det_path), pose_name=os.path.basename(pose_path))
