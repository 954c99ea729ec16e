"""HJB face optimisation building blocks (facts §6): refine the predicted clean latent x̂0 towards the
reference identity with a few Adam steps on an ArcFace loss through the differentiable VAE decoder.

Official algorithm, per refined step i (start <= i <= end, default 0..20 of 25):
    z = x̂0 (scaled latents); Adam([z], lr = lr0 * (1 - i/N)), fresh every step;
    K times: pixels = clamp((D(z / 0.18215) + 1) / 2, 0, 1) * 2 - 1, decoded in chunks of 4 frames (each
    its own temporal clip); crop each frame's face box (inclusive), bilinear 112x112; ArcFace;
    loss = mean_f |1 - cos(e_f, e_ref)|; backward; Adam step.
    x̂0 <- z.

The official code decodes every frame in full with autograd, for all chunks at once. Here:
- only the latent window around the faces is decoded (the union of the chunk's face boxes in latent
  cells plus `context` cells of margin, clamped to the frame; one window per chunk, so the temporal
  decoder sees an aligned clip). `full_frame=True` decodes whole frames as the official code does;
- each chunk's loss is back-propagated on its own (the loss is a sum over frames, so the gradient is
  the same as one backward of the whole loss) and its graph freed before the next chunk is decoded,
  so only one chunk's decoder activations are alive at a time. Inside a chunk, the decode callable
  may checkpoint its blocks (nodes/hjb.py does);
- the gradient is taken with `torch.autograd.grad` w.r.t. z only: decoder and ArcFace weights never
  receive a `.grad`.

No comfy imports: the decoder is a callable supplied by the caller.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..errors import StableAnimatorError
from ..face.face_crop import crop_faces

log = logging.getLogger("StableAnimator")

LATENT_SCALE = 0.18215   # SD1.5 / SVD VAE scaling factor
DOWNSCALE = 8            # pixels per latent cell


@dataclass
class HJBSettings:
    start: int = 0            # first refined sampling step (inclusive)
    end: int = 20             # last refined sampling step (inclusive)
    iterations: int = 3       # Adam iterations per refined step
    lr: float = 0.1           # base learning rate; step i uses lr * (1 - i / total_steps)
    chunk: int = 4            # frames per decoded clip (official decode_chunk_size)
    context: int = 8          # latent cells of margin around the faces when decoding regions
    full_frame: bool = False  # True: decode whole frames (official behaviour, much more memory)

    def active(self, step: int) -> bool:
        return self.iterations > 0 and self.start <= step <= self.end

    def learning_rate(self, step: int, total_steps: int) -> float:
        return self.lr * (1.0 - step / total_steps)


@dataclass(frozen=True)
class DecodeWindow:
    """Frames [start, stop) are decoded together as one clip, latent rows y0:y1, columns x0:x1 (exclusive)."""
    start: int
    stop: int
    y0: int
    y1: int
    x0: int
    x1: int


def _pixel_boxes(boxes, frames: int, height: int, width: int) -> torch.Tensor:
    """(F,4) or (4,) boxes -> (F,4) long inclusive x0,y0,x1,y1 clamped to the frame (crop_faces' convention)."""
    b = torch.as_tensor(boxes, dtype=torch.float32).detach().cpu()
    if b.ndim == 1:
        b = b.expand(frames, 4)
    if b.shape != (frames, 4):
        raise StableAnimatorError(f"HJB needs one face box per frame: {frames} frames, boxes {tuple(b.shape)}")
    b = b.round().long()
    x0, x1 = b[:, 0].clamp(0, width - 1), b[:, 2].clamp(0, width - 1)
    y0, y1 = b[:, 1].clamp(0, height - 1), b[:, 3].clamp(0, height - 1)
    if bool(((x1 < x0) | (y1 < y0)).any()):
        bad = int(((x1 < x0) | (y1 < y0)).nonzero()[0])
        raise StableAnimatorError(f"empty face box {b[bad].tolist()} for frame {bad} of a {width}x{height} video")
    return torch.stack([x0, y0, x1, y1], 1)


def decode_windows(boxes, frames: int, latent_hw: tuple, settings: HJBSettings) -> list[DecodeWindow]:
    """The chunks and latent windows refine_x0 decodes. boxes: (F,4) pixel x0,y0,x1,y1 (inclusive)."""
    h, w = int(latent_hw[0]), int(latent_hw[1])
    pix = _pixel_boxes(boxes, frames, h * DOWNSCALE, w * DOWNSCALE)
    chunk = max(1, int(settings.chunk))
    ctx = max(0, int(settings.context))
    windows = []
    for s in range(0, frames, chunk):
        e = min(frames, s + chunk)
        if settings.full_frame:
            windows.append(DecodeWindow(s, e, 0, h, 0, w))
            continue
        b = pix[s:e] // DOWNSCALE  # face cells, inclusive
        x0 = max(0, int(b[:, 0].min()) - ctx)
        y0 = max(0, int(b[:, 1].min()) - ctx)
        x1 = min(w, int(b[:, 2].max()) + ctx + 1)
        y1 = min(h, int(b[:, 3].max()) + ctx + 1)
        windows.append(DecodeWindow(s, e, y0, y1, x0, x1))
    return windows


def _module_dtype_device(module: torch.nn.Module):
    p = next(module.parameters(), None)
    return (p.dtype, p.device) if p is not None else (torch.float32, None)


def _identity_terms(arcface: torch.nn.Module, frames: torch.Tensor, boxes, ref_embedding: torch.Tensor) -> torch.Tensor:
    """Per-frame |1 - cos(ArcFace(crop_f), e_ref)|, shape (F,), float32, differentiable w.r.t. frames."""
    dtype, device = _module_dtype_device(arcface)
    crops = crop_faces(frames, boxes)
    if device is not None:
        crops = crops.to(device=device, dtype=dtype)
    emb = arcface(crops).float()
    ref = ref_embedding.to(device=emb.device, dtype=torch.float32).reshape(1, -1).expand_as(emb)
    return (1.0 - F.cosine_similarity(emb, ref, dim=1)).abs()


def identity_loss(arcface: torch.nn.Module, frames: torch.Tensor, boxes, ref_embedding: torch.Tensor) -> torch.Tensor:
    """frames (F,3,H,W) in [-1,1]; boxes (F,4) inclusive pixel x0,y0,x1,y1; ref (1,512) -> mean_f |1 - cos|."""
    return _identity_terms(arcface, frames, boxes, ref_embedding).mean()


@torch.no_grad()
def reference_identity(arcface: torch.nn.Module, image: torch.Tensor, box) -> torch.Tensor:
    """The HJB target e_ref: image (1,3,H,W) RGB in [-1,1] at its native size, box (4,) inclusive pixel
    x0,y0,x1,y1 of the reference face -> raw (un-normalised) ArcFace embedding (1,512), float32."""
    if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise StableAnimatorError(f"reference image must be (1,3,H,W) RGB, got {tuple(image.shape)}")
    arcface.eval()
    dtype, device = _module_dtype_device(arcface)
    box = _pixel_boxes(torch.as_tensor(box).reshape(-1, 4)[:1], 1, image.shape[-2], image.shape[-1])
    crop = crop_faces(image.float(), box)
    if device is not None:
        crop = crop.to(device=device, dtype=dtype)
    return arcface(crop).float()


def _decode_pixels(decode: Callable, latents_unscaled: torch.Tensor) -> torch.Tensor:
    pixels = decode(latents_unscaled)
    return ((pixels.float() + 1.0) / 2.0).clamp(0.0, 1.0) * 2.0 - 1.0  # official postprocess


def face_loss_grad(z: torch.Tensor, decode: Callable, arcface: torch.nn.Module, ref_embedding: torch.Tensor,
                   boxes, settings: HJBSettings = None, latent_scale: float = LATENT_SCALE,
                   windows: Optional[list] = None) -> tuple[float, torch.Tensor]:
    """Loss mean_f |1 - cos| of the scaled latents z (F,4,h,w) and its gradient w.r.t. z (float32, zero
    outside the decoded windows). Chunks are decoded, scored and back-propagated one at a time, so only
    one chunk's graph exists at any moment. Works inside torch.inference_mode() (it clones z and the
    reference into normal tensors); the decoder's and ArcFace's weights must not be inference tensors."""
    settings = settings or HJBSettings()
    frames = z.shape[0]
    h, w = z.shape[-2:]
    pix = _pixel_boxes(boxes, frames, h * DOWNSCALE, w * DOWNSCALE)
    windows = windows if windows is not None else decode_windows(pix, frames, (h, w), settings)
    total = 0.0
    with torch.inference_mode(False), torch.enable_grad():
        leaf = z.detach().clone().float().requires_grad_(True)
        ref = ref_embedding.detach().clone().float()
        grad = torch.zeros_like(leaf)
        for win in windows:
            tile = leaf[win.start:win.stop, :, win.y0:win.y1, win.x0:win.x1]
            pixels = _decode_pixels(decode, tile / latent_scale)
            offset = torch.tensor([win.x0, win.y0, win.x0, win.y0]) * DOWNSCALE
            terms = _identity_terms(arcface, pixels, pix[win.start:win.stop] - offset, ref)
            chunk_loss = terms.sum()
            (g,) = torch.autograd.grad(chunk_loss / frames, leaf)
            grad += g
            total += float(chunk_loss.detach())
            del pixels, terms, chunk_loss, g
    return total / frames, grad


def refine_x0(x0: torch.Tensor, step: int, total_steps: int, decode: Callable, arcface: torch.nn.Module,
              ref_embedding: torch.Tensor, boxes, settings: HJBSettings = None, latent_scale: float = LATENT_SCALE,
              should_stop: Optional[Callable[[], bool]] = None) -> tuple[torch.Tensor, list[float]]:
    """One refined sampling step of the HJB face optimisation.

    x0: (F,4,h,w) guided x0 prediction in the model's scaled latent space (SD1.5 latent x 0.18215).
    decode(latents_unscaled (n,4,h',w')) -> pixels (n,3,8h',8w') in [-1,1], differentiable; its batch is
    one temporal clip. boxes: (F,4) pixel x0,y0,x1,y1 (inclusive, rounded) at generation size.
    Returns (refined x0 with x0's dtype/device, the loss before each Adam step). Outside
    settings.start..end (or with iterations 0) x0 is returned unchanged with no losses. should_stop() is
    called before each iteration; when it returns True the refinement ends with what it has.
    Safe to call inside torch.inference_mode(): the optimisation runs on a normal-tensor clone.
    """
    settings = settings or HJBSettings()
    if not settings.active(step):
        return x0, []
    if x0.ndim != 4 or x0.shape[1] != 4:
        raise StableAnimatorError(f"HJB expects latents of shape (frames,4,h,w), got {tuple(x0.shape)}")
    if total_steps <= 0:
        raise StableAnimatorError(f"total_steps must be positive, got {total_steps}")
    lr = settings.learning_rate(step, total_steps)
    losses: list[float] = []
    with torch.inference_mode(False), torch.enable_grad():
        z = x0.detach().clone().float().requires_grad_(True)  # clone: a normal tensor even if x0 is an inference tensor
        ref = ref_embedding.detach().clone().float()
        frames, (h, w) = z.shape[0], z.shape[-2:]
        pix = _pixel_boxes(boxes, frames, h * DOWNSCALE, w * DOWNSCALE)
        windows = decode_windows(pix, frames, (h, w), settings)
        arcface.eval()
        optimizer = torch.optim.Adam([z], lr=lr)
        for _ in range(int(settings.iterations)):
            if should_stop is not None and should_stop():
                log.info("HJB: stopped at step %d after %d iterations", step, len(losses))
                break
            loss, grad = face_loss_grad(z, decode, arcface, ref, pix, settings, latent_scale, windows)
            losses.append(loss)
            z.grad = grad
            optimizer.step()
            z.grad = None
        refined = z.detach()
    log.debug("HJB step %d lr %.4f losses %s", step, lr, ["%.4f" % v for v in losses])
    return refined.to(dtype=x0.dtype, device=x0.device), losses


def schedule_step(sigmas: torch.Tensor, sigma) -> Optional[int]:
    """Index of `sigma` (a model evaluation's noise level) in the sampling schedule `sigmas`, or None when
    the evaluation falls between schedule points (e.g. a second-order sampler's midpoint)."""
    if sigmas is None:
        return None
    s = torch.as_tensor(sigma).detach().flatten()[0].float().cpu()
    matches = torch.isclose(sigmas.detach().float().cpu(), s, rtol=1e-4, atol=0.0).nonzero().flatten()
    return int(matches[0]) if len(matches) else None
