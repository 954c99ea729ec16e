"""Streaming frame decode: each frame the output needs is resized (and cropped or padded) as it is read, so only
one full-resolution frame is alive at a time; frames between the sampled times are decoded but never converted."""
from __future__ import annotations

import math

import av
import numpy as np
import torch

from ..errors import StableAnimatorError
from ..image_ops import PAD_VALUE, fit_plan
from .clip import FIX_FILE, frame_period, name_of, open_clip, video_stream


def sample_times(start: float, rate: float, end: float | None, cap: int) -> int | None:
    """How many output frames the span [start, end) holds at `rate` (times start + k / rate), at most cap
    (0: no cap). None when the end is not known before decoding (duration 0 and no container duration)."""
    if end is None:
        return cap or None
    n = max(0, math.ceil((end - start) * rate - 1e-6))
    return min(n, cap) if cap else n


class _Converter:
    """Turns a decoded av.VideoFrame into a uint8 (height, width, 3) array at the working size."""

    def __init__(self, info, width, height, fit):
        self.width, self.height, self.fit, self.rotation = width, height, fit, info.rotation
        self.sw, self.sh, self.x, self.y = fit_plan(info.width, info.height, width, height, fit)

    def __call__(self, frame) -> np.ndarray:
        sw, sh = (self.sh, self.sw) if self.rotation in (90, 270) else (self.sw, self.sh)
        img = frame.to_ndarray(width=sw, height=sh, format="rgb24", interpolation="AREA")
        if self.rotation:
            img = np.rot90(img, k=self.rotation // 90)
        if self.fit == "crop":
            img = img[self.y:self.y + self.height, self.x:self.x + self.width]
        elif self.fit == "pad":
            canvas = np.full((self.height, self.width, 3), round(PAD_VALUE * 255), np.uint8)
            canvas[self.y:self.y + self.sh, self.x:self.x + self.sw] = img
            img = canvas
        return np.ascontiguousarray(img)


def _decoded(container, vs, source, origin):
    """(time from the clip's start, frame) for every frame, with a clear message when decoding breaks."""
    period = frame_period(vs.average_rate)
    index, last = 0, None
    try:
        for frame in container.decode(vs):
            t = frame.time - origin if frame.time is not None else index * period
            index += 1
            last = t
            yield t, frame
    except av.FFmpegError as e:
        where = f"after {last:.2f} s" if last is not None else "at its first frame"
        raise StableAnimatorError(
            f"{name_of(source)} is damaged: decoding stopped {where} of the clip ({e.strerror or e}). Make the "
            f"span end before that point (start_time + duration), or {FIX_FILE}") from e


def read_frames(source, info, width: int, height: int, fit: str, rate: float, start: float, end: float | None,
                cap: int, progress=None):
    """The frames shown at times start + k / rate (k = 0, 1, ...) while before `end` (None: the clip's end) and
    k < cap (0: no cap), as a float32 (n, height, width, 3) tensor in [0, 1]; also the clip time where decoding
    ended (the last decoded frame's end). progress(done, total or None) is called per output frame."""
    convert = _Converter(info, width, height, fit)
    # the bar's total: the span as asked, cut at the clip's end when that is known
    ends = [e for e in (end, info.duration) if e]
    total = sample_times(start, rate, min(ends) if ends else None, cap)
    eps = min(1e-3, 0.25 / rate)
    out: list[np.ndarray] = []

    def wanted(k):
        return (not cap or k < cap) and (end is None or start + k / rate < end - eps)

    def frames(seek: bool):
        container = open_clip(source)
        vs = video_stream(container, source)
        vs.thread_type = "AUTO"
        if seek and start > 0:
            try:
                container.seek(int((start + info.origin) / vs.time_base), stream=vs, backward=True)
            except av.FFmpegError:
                container.close()
                yield from frames(False)
                return
        try:
            yield from _decoded(container, vs, source, info.origin)
        finally:
            container.close()

    def run(seek: bool):
        k, prev, prev_img, clip_end = 0, None, None, 0.0

        def emit_until(limit):
            """The previous frame is on screen until `limit`: it fills every wanted output time before that."""
            nonlocal k, prev_img
            while prev is not None and wanted(k) and start + k / rate + eps < limit:
                if prev_img is None:
                    prev_img = convert(prev)
                out.append(prev_img)
                k += 1
                if progress:
                    progress(k, total)

        decoded = frames(seek)
        try:
            for t, frame in decoded:
                if prev is None and seek and start > 0 and t > start + eps:
                    return None           # the seek landed after the start: decode from the beginning instead
                emit_until(t)
                if not wanted(k):
                    return t
                prev, prev_img = frame, None
                dur = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
                clip_end = t + (dur or frame_period(info.rate))
            emit_until(clip_end)
            return clip_end
        finally:
            decoded.close()   # before a second pass opens the same BytesIO

    ended = run(True)
    if ended is None:
        out.clear()
        ended = run(False)
    frames_t = torch.empty((len(out), height, width, 3), dtype=torch.float32)
    for i in range(len(out)):          # convert one frame at a time: no second full-size copy of the clip
        frames_t[i] = torch.from_numpy(out[i]).float().div_(255)
        out[i] = None
    return frames_t, ended
