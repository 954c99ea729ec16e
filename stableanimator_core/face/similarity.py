"""Identity similarity (the paper's CSIM): cosine between the reference face embedding and each frame's."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import StableAnimatorError


def cosine_similarity(reference: torch.Tensor, frames: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """reference (512,) or (1,512); frames (N,512) -> (N,) cosine similarities."""
    ref = torch.as_tensor(reference, dtype=torch.float32).reshape(-1)
    frm = torch.as_tensor(frames, dtype=torch.float32).reshape(-1, ref.shape[0])
    num = frm @ ref
    return num / (frm.norm(dim=1) * ref.norm()).clamp_min(eps)


def identity_similarity(reference, frames) -> dict:
    """Two FaceEmbedding-like objects (embedding, found) -> per-frame CSIM and summary.

    The reference must contain a face (its first one is used). Frames without a face get NaN and are
    left out of mean and minimum.
    """
    if len(reference) == 0 or not bool(reference.found.reshape(-1)[0]):
        raise StableAnimatorError("the reference has no detected face, so identity similarity is undefined; "
                                  "embed a reference image with a visible face")
    found = torch.as_tensor(frames.found).reshape(-1).bool()
    values = cosine_similarity(reference.embedding[0], frames.embedding)
    values = torch.where(found, values, torch.full_like(values, float("nan")))
    valid = values[found]
    if valid.numel() == 0:
        raise StableAnimatorError(f"no face was found in any of the {len(frames)} frames; "
                                  "identity similarity needs faces in the generated frames")
    return {"values": values, "mean": float(valid.mean()), "min": float(valid.min()),
            "missing": int((~found).sum())}


def format_values(values: torch.Tensor, digits: int = 4) -> str:
    return ", ".join("n/a" if math.isnan(v) else f"{v:.{digits}f}" for v in values.tolist())


def plot_similarity(values: torch.Tensor, width: int = 640, height: int = 320) -> np.ndarray:
    """Line plot of per-frame similarity (NaN = no face, drawn as a red tick). Returns (H,W,3) float in [0,1]."""
    from PIL import Image, ImageDraw, ImageFont

    vals = [float(v) for v in torch.as_tensor(values).tolist()]
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    left, right, top, bottom = 48, 16, 28, 28
    pw, ph = width - left - right, height - top - bottom
    finite = [v for v in vals if not math.isnan(v)]
    lo = min([0.0] + finite)
    lo = math.floor(lo * 4) / 4  # axis from a quarter step below the data (normally 0) to 1
    hi = 1.0

    def y_of(v):
        return top + (hi - v) / (hi - lo) * ph

    def x_of(i):
        return left + (pw * i / (len(vals) - 1) if len(vals) > 1 else pw / 2)

    tick = lo
    while tick <= hi + 1e-9:
        y = y_of(tick)
        draw.line([(left, y), (left + pw, y)], fill=(225, 225, 225))
        draw.text((4, y - 6), f"{tick:.2f}", fill=(80, 80, 80), font=font)
        tick += 0.25
    draw.rectangle([left, top, left + pw, top + ph], outline=(0, 0, 0))
    if finite:
        mean = sum(finite) / len(finite)
        y = y_of(mean)
        for x in range(left, left + pw, 8):
            draw.line([(x, y), (min(x + 4, left + pw), y)], fill=(230, 120, 0))
        draw.text((left + 4, 6), f"CSIM mean {mean:.3f}  min {min(finite):.3f}  frames {len(vals)}",
                  fill=(0, 0, 0), font=font)
    points = []
    for i, v in enumerate(vals):
        if math.isnan(v):
            if len(points) > 1:
                draw.line(points, fill=(30, 90, 200), width=2)
            points = []
            x = x_of(i)
            draw.line([(x, top + ph - 8), (x, top + ph)], fill=(220, 0, 0), width=2)
            continue
        points.append((x_of(i), y_of(v)))
    if len(points) > 1:
        draw.line(points, fill=(30, 90, 200), width=2)
    for i, v in enumerate(vals):
        if not math.isnan(v):
            x, y = x_of(i), y_of(v)
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=(30, 90, 200))
    draw.text((left, top + ph + 8), "frame 1", fill=(80, 80, 80), font=font)
    label = f"frame {len(vals)}"
    draw.text((left + pw - 6 * len(label), top + ph + 8), label, fill=(80, 80, 80), font=font)
    return np.asarray(img, dtype=np.float32) / 255.0
