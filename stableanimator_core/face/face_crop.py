"""Differentiable face crops for the HJB identity loss (facts §6, step 3.ii).

The official code crops each decoded frame to its raw face bbox, inclusive of both ends
(`frame[:, y0:y1+1, x0:x1+1]`), with no alignment and no aspect preservation, and resizes it
bilinearly (align_corners=False) to the 112x112 input of the torch ArcFace.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import StableAnimatorError

CROP_SIZE = 112


def crop_faces(frames: torch.Tensor, boxes: torch.Tensor, size: int = CROP_SIZE) -> torch.Tensor:
    """frames (F,3,H,W) in [-1,1]; boxes (F,4) integer pixel x0,y0,x1,y1 (inclusive) -> (F,3,size,size).

    Gradients flow back into `frames`. Boxes are clamped to the frame.
    """
    if frames.ndim != 4:
        raise StableAnimatorError(f"expected frames of shape (F,3,H,W), got {tuple(frames.shape)}")
    boxes = torch.as_tensor(boxes)
    if boxes.ndim == 1:
        boxes = boxes.expand(frames.shape[0], 4)
    if boxes.shape != (frames.shape[0], 4):
        raise StableAnimatorError(f"need one box per frame: {frames.shape[0]} frames, boxes {tuple(boxes.shape)}")
    h, w = frames.shape[-2:]
    crops = []
    for frame, box in zip(frames, boxes.round().long().tolist()):
        x0, y0, x1, y1 = box
        x0, x1 = max(0, min(x0, w - 1)), max(0, min(x1, w - 1))
        y0, y1 = max(0, min(y0, h - 1)), max(0, min(y1, h - 1))
        if x1 < x0 or y1 < y0:
            raise StableAnimatorError(f"empty face box {box} in a {w}x{h} frame")
        patch = frame[:, y0:y1 + 1, x0:x1 + 1].unsqueeze(0)
        crops.append(F.interpolate(patch, size=(size, size), mode="bilinear", align_corners=False))
    return torch.cat(crops, 0)


def boxes_from_masks(masks: torch.Tensor, threshold: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """MASK batch (F,H,W) -> (boxes (F,4) long inclusive x0,y0,x1,y1 of mask > threshold, empty (F,) bool).

    All pixels above the threshold form one box (the official code also boxes the union). Frames with
    an empty mask get the whole frame as box and are flagged in `empty`; the caller decides.
    """
    if masks.ndim == 2:
        masks = masks.unsqueeze(0)
    if masks.ndim != 3:
        raise StableAnimatorError(f"expected a MASK batch (F,H,W), got {tuple(masks.shape)}")
    n, h, w = masks.shape
    on = masks > threshold
    rows, cols = on.any(dim=2), on.any(dim=1)  # (F,H), (F,W)
    empty = ~rows.any(dim=1)
    ar_h, ar_w = torch.arange(h), torch.arange(w)
    big = torch.iinfo(torch.long).max

    def first(flags, ar):
        return torch.where(flags, ar, torch.full_like(ar, big)).min(dim=1).values

    def last(flags, ar):
        return torch.where(flags, ar, torch.full_like(ar, -1)).max(dim=1).values

    boxes = torch.stack([first(cols, ar_w), first(rows, ar_h), last(cols, ar_w), last(rows, ar_h)], dim=1)
    full = torch.tensor([0, 0, w - 1, h - 1])
    boxes = torch.where(empty[:, None], full, boxes)
    return boxes.long(), empty


def boxes_to_pixels(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Float detector boxes (x0,y0,x1,y1 with exclusive right/bottom) -> inclusive integer pixel boxes."""
    b = torch.as_tensor(boxes, dtype=torch.float32)
    x0 = b[:, 0].floor().clamp(0, width - 1)
    y0 = b[:, 1].floor().clamp(0, height - 1)
    x1 = (b[:, 2].ceil() - 1).clamp(0, width - 1)
    y1 = (b[:, 3].ceil() - 1).clamp(0, height - 1)
    return torch.stack([x0, y0, torch.maximum(x0, x1), torch.maximum(y0, y1)], 1).long()
