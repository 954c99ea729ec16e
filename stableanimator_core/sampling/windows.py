"""Long videos the official way: overlapping windows that all hold frame 0, fused with triangular weights.

Every window is frame 0 plus `window - 1` consecutive frames; windows start every `window - overlap` frames,
and one more window ends on the last frame if the stride left it out. Each frame's prediction is the
weighted mean over the windows that hold it, weight min((j+0.5)*2/T, 2-(j+0.5)*2/T) at position j of a
window of length T (official MimicMotion-style fusion). Unlike the official code, fewer frames than one
window are allowed: they form a single window.
"""
from __future__ import annotations

import torch

from ..errors import StableAnimatorError


def window_problem(window: int, overlap: int) -> str | None:
    """Why window/overlap would leave a frame out of every window for some frame count, or None.

    Derived from `window_schedule`: a window starting at s holds frame 0 and frames s+1 .. s+window-1, and the
    next one starts at s + window - overlap, so it holds s+window-overlap+1 ..; no frame falls between them iff
    window - overlap + 1 <= window, i.e. overlap >= 1 (overlap 0 misses frames window, 2*window, ... once a
    video has 2*window frames). The windows must advance: overlap < window. Every frame also needs a window
    holding more than frame 0: window >= 2. Under these three, every frame count is covered (the last window
    ends on the last frame); tests/test_windows.py checks the rule against the schedule itself."""
    if window < 2:
        return f"window ({window}) must be at least 2: every window holds frame 0 plus window - 1 other frames"
    if overlap < 1:
        return (f"overlap ({overlap}) must be at least 1: each window starts window - overlap frames after the "
                f"previous one and holds frame 0 plus window - 1 others, so with overlap {overlap} frames {window}, "
                f"{2 * window}, ... lie in no window (NaN latent, black video) once the video has {2 * window} "
                "frames or more; official: 4")
    if overlap >= window:
        return f"overlap ({overlap}) must be smaller than window ({window}): the windows must advance along the video"
    return None


def window_schedule(frames: int, window: int, overlap: int) -> list[list[int]]:
    """The schedule as written, without checking window/overlap (window_indices checks them first)."""
    if frames <= window:
        return [list(range(frames))]
    stride = window - overlap
    windows = [[0, *range(start + 1, min(start + window, frames))] for start in range(0, frames - window + 1, stride)]
    if windows[-1][-1] != frames - 1:
        windows.append([0, *range(frames - window + 1, frames)])
    return windows


def window_indices(frames: int, window: int = 16, overlap: int = 4) -> list[list[int]]:
    if frames < 1:
        raise StableAnimatorError("the video has no frames: give at least one pose frame")
    problem = window_problem(window, overlap)
    if problem:
        raise StableAnimatorError(problem)
    return window_schedule(frames, window, overlap)


def triangle_weights(length: int) -> torch.Tensor:
    j = torch.arange(length, dtype=torch.float64) + 0.5
    return torch.minimum(j * 2 / length, 2 - j * 2 / length)


def periodic_noise(noise: torch.Tensor, period: int) -> torch.Tensor:
    """Repeat the first `period` frames of (F,...) noise over all frames: frame k and k+period start alike."""
    if noise.shape[0] <= period:
        return noise
    reps = -(-noise.shape[0] // period)
    return noise[:period].repeat(reps, *([1] * (noise.ndim - 1)))[: noise.shape[0]]


def cfg_scales(frames: int, cfg_min: float, cfg_max: float) -> torch.Tensor:
    """Per-frame guidance, linear from the first to the last frame (official min/max_guidance_scale)."""
    return torch.linspace(cfg_min, cfg_max, frames, dtype=torch.float64)
