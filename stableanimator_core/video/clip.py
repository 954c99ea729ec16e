"""Opening a clip and what is known about it before decoding: size as displayed, frame rate, duration, audio."""
from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av

from ..errors import StableAnimatorError

FIX_FILE = "re-export it as an mp4 (h264 video, aac audio), or pick another file"


def name_of(source) -> str:
    return os.path.basename(source) if isinstance(source, (str, os.PathLike)) else "the video"


def open_clip(source):
    """av.open(source) for a path or a BytesIO, with a clear message for a file FFmpeg cannot read."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        return av.open(source, mode="r")
    except av.FFmpegError as e:
        raise StableAnimatorError(
            f"{name_of(source)} could not be opened as a video ({e.strerror or e}): the file is not a video, or it "
            f"is damaged or cut short (an mp4 whose copy or upload stopped early lacks its index); {FIX_FILE}") from e
    except (OSError, ValueError) as e:
        raise StableAnimatorError(f"{name_of(source)} could not be opened as a video ({e}); {FIX_FILE}") from e


def video_stream(container, source):
    streams = container.streams.video
    if not streams:
        raise StableAnimatorError(f"{name_of(source)} has no video stream (an audio file or an image?); pick a video")
    return streams[0]


@dataclass
class ClipInfo:
    width: int            # as displayed (a phone clip stored sideways with a rotation tag: the upright size)
    height: int
    rate: Fraction        # average frame rate (for a variable-rate clip: its mean)
    duration: float       # seconds, from the container (0 when unknown)
    origin: float         # presentation time of the clip's start, seconds: video and audio times count from here
    rotation: int         # degrees counter-clockwise to turn the stored picture upright (0, 90, 180, 270)
    has_audio: bool
    top_rate: Fraction | None = None   # FFmpeg's r_frame_rate: for a variable-rate clip, its fastest stretch


def first_frame_rotation(container, vs) -> int:
    """Degrees counter-clockwise to turn the stored picture upright, from the first frame's display matrix (phones
    store portrait clips sideways with such a tag). 0 when the first frame cannot be decoded (decoding says why)."""
    try:
        for frame in container.decode(vs):
            return int(round((frame.rotation or 0) / 90.0)) * 90 % 360
    except av.FFmpegError:
        return 0
    return 0


def probe(container, source) -> ClipInfo:
    vs = video_stream(container, source)
    rate = vs.average_rate or vs.guessed_rate or vs.base_rate
    if not rate or rate <= 0:
        raise StableAnimatorError(f"{name_of(source)} does not say its frame rate; {FIX_FILE}")
    duration = 0.0
    if container.duration is not None:
        duration = container.duration / av.time_base
    elif vs.duration is not None and vs.time_base is not None:
        duration = float(vs.duration * vs.time_base)
    origin = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
    rotation = first_frame_rotation(container, vs)
    w, h = vs.codec_context.width, vs.codec_context.height
    sar = vs.sample_aspect_ratio
    if sar and sar > 0 and sar != 1:        # anamorphic storage: pixels are not square
        w = max(1, int(round(w * float(sar))))
    if rotation in (90, 270):
        w, h = h, w
    top = vs.base_rate if vs.base_rate and 0 < vs.base_rate <= 1000 else None
    return ClipInfo(w, h, Fraction(rate), duration, origin, rotation, bool(container.streams.audio),
                    Fraction(top) if top else None)


def follow_aspect(clip_w: int, clip_h: int, width: int, height: int, multiple: int = 64) -> tuple[int, int]:
    """The working size for 'follow video aspect': the clip's aspect with the long side max(width, height), both
    sides snapped to multiples of 64 (at least 64)."""
    long_side = max(width, height)
    long_side = max(multiple, int(math.floor(long_side / multiple + 0.5)) * multiple)
    short = long_side * min(clip_w, clip_h) / max(clip_w, clip_h)
    short = max(multiple, int(math.floor(short / multiple + 0.5)) * multiple)
    return (long_side, short) if clip_w >= clip_h else (short, long_side)


def frame_period(rate) -> float:
    return 1.0 / float(rate) if rate and math.isfinite(float(rate)) and rate > 0 else 0.0
