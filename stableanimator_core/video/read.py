"""read_video: the checks, the working size, frames and audio of one span of a clip."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import StableAnimatorError
from ..image_ops import FITS, check_size, resize_fit
from .audio import read_audio
from .clip import ClipInfo, follow_aspect, name_of, open_clip, probe
from .frames import read_frames, sample_times

log = logging.getLogger("StableAnimator")

SIZES = ("width x height", "follow video aspect")
SILENT_RATE = 44100
RATE_TOLERANCE = 1.01     # 30 fps asked of a 29.97 fps clip is its own rate, not an upsampling


@dataclass
class VideoRead:
    frames: torch.Tensor          # (n, height, width, 3) float32 in [0, 1]
    fps: float
    waveform: np.ndarray          # (channels, samples) float32, exactly n / fps seconds
    sample_rate: int
    has_audio: bool
    info: ClipInfo
    notes: list[str] = field(default_factory=list)   # what the log said (tests and the node read them)

    @property
    def width(self):
        return self.frames.shape[2]

    @property
    def height(self):
        return self.frames.shape[1]


def check_request(info: ClipInfo, source, fps: float, start: float, duration: float, cap: int) -> None:
    name = name_of(source)
    for label, v in (("fps", fps), ("start_time", start), ("duration", duration)):
        if not math.isfinite(v) or v < 0:
            raise StableAnimatorError(f"{label} = {v} must be a finite number of at least 0")
    if cap < 0:
        raise StableAnimatorError(f"frame_cap = {cap} must be at least 0 (0: no cap)")
    # a variable-rate clip may be sampled up to its fastest stretch (a phone's 30 fps clip that averages 29.4)
    own = max(float(info.rate), float(info.top_rate or 0))
    if fps > own * RATE_TOLERANCE:
        raise StableAnimatorError(
            f"fps {fps:g} is above {name}'s own frame rate ({own:.3g} fps): frames would only be repeated, which "
            f"costs sampling time and adds no motion. Set fps to 0 (the clip's rate) or at most {own:.3g}; to get a "
            f"smoother result, interpolate the generated frames afterwards")
    if info.duration and start >= info.duration:
        raise StableAnimatorError(
            f"start_time {start:g} s is at or past the end of {name}, which lasts {info.duration:.2f} s; "
            f"use a start_time below {info.duration:.2f}")


def working_size(info: ClipInfo, width: int, height: int, size: str) -> tuple[int, int]:
    if size not in SIZES:
        raise StableAnimatorError(f"size '{size}' is not one of {list(SIZES)}")
    if size == SIZES[1]:
        width, height = follow_aspect(info.width, info.height, width, height)
    check_size(width, height)
    return width, height


def read_video(source, width: int = 512, height: int = 512, size: str = SIZES[0], fit: str = "stretch",
               fps: float = 0.0, start_time: float = 0.0, duration: float = 0.0, frame_cap: int = 0,
               progress=None) -> VideoRead:
    """Frames of source (a path or a BytesIO) at start_time + k / fps, k < frame_cap, within duration (0: to the
    end), each resized on read to the working size by fit (stretch, crop, pad); the audio over exactly those
    frames (silence at 44.1 kHz when the clip has none)."""
    if fit not in FITS:
        raise StableAnimatorError(f"fit '{fit}' is not one of {list(FITS)}")
    with open_clip(source) as container:
        info = probe(container, source)
    check_request(info, source, fps, start_time, duration, frame_cap)
    w, h = working_size(info, width, height, size)
    rate = fps or float(info.rate)
    end = start_time + duration if duration else None
    notes = []
    frames, ended = read_frames(source, info, w, h, fit, rate, start_time, end, frame_cap, progress)
    name = name_of(source)
    if frames.shape[0] == 0:
        if ended and start_time >= ended:
            raise StableAnimatorError(
                f"start_time {start_time:g} s is at or past the last frame of {name} ({ended:.2f} s); use a "
                f"start_time below {ended:.2f}")
        raise StableAnimatorError(f"{name} has a video stream without frames (nothing to animate); pick another "
                                  f"clip, or re-export it as an mp4 (h264)")
    length = frames.shape[0] / rate
    if end is not None and end > ended + 1e-3 and (not frame_cap or frames.shape[0] < frame_cap):
        notes.append(f"{name} ends at {ended:.2f} s, before the requested end ({end:g} s): "
                     f"{frames.shape[0]} frames instead of {sample_times(start_time, rate, end, frame_cap)}")
    elif end is None and info.duration and ended < info.duration - 0.5:
        notes.append(f"{name} says it lasts {info.duration:.2f} s but its frames end at {ended:.2f} s: "
                     f"the file may be cut short")
    audio = read_audio(source, info, start_time, length) if info.has_audio else None
    if audio is None:
        notes.append(f"{name} has no audio: the audio output is {length:.2f} s of silence")
        waveform, sr, has_audio = silence(length), SILENT_RATE, False
    else:
        (waveform, sr), has_audio = audio, True
    for note in notes:
        log.warning("StableAnimator Video Frames: %s", note)
    return VideoRead(frames, rate, waveform, sr, has_audio, info, notes)


def silence(seconds: float) -> np.ndarray:
    """The audio of a clip without sound: mono silence of that length, so Create Video still gets a track."""
    return np.zeros((1, int(round(seconds * SILENT_RATE))), np.float32)


def resample_tensor(images: torch.Tensor, rate_in: float, waveform, sample_rate, width, height, size, fit,
                    fps, start_time, duration, frame_cap) -> tuple[torch.Tensor, float, np.ndarray, int]:
    """The same selection for a VIDEO that is already frames in memory (core Create Video's output): frames,
    their rate, the audio over them and its sample rate (silence when the video has none)."""
    info = ClipInfo(images.shape[2], images.shape[1], rate_in, images.shape[0] / float(rate_in), 0.0, 0,
                    waveform is not None)
    check_request(info, "the video", fps, start_time, duration, frame_cap)
    w, h = working_size(info, width, height, size)
    rate = fps or float(rate_in)
    end = min(start_time + duration, info.duration) if duration else info.duration
    n = sample_times(start_time, rate, end, frame_cap)
    idx = [min(images.shape[0] - 1, int(math.floor((start_time + k / rate) * float(rate_in) + 1e-3)))
           for k in range(n)]
    if not idx:
        raise StableAnimatorError("the video has no frames in the requested span; lower start_time")
    frames = torch.cat([resize_fit(images[idx[i:i + 16], ..., :3].float(), w, h, fit, "bicubic")
                        for i in range(0, n, 16)])
    if waveform is None:
        log.warning("StableAnimator Video Frames: the video has no audio: the audio output is silence")
        return frames, rate, silence(n / rate), SILENT_RATE
    first, count = int(round(start_time * sample_rate)), int(round(n / rate * sample_rate))
    wave = np.zeros((waveform.shape[0], count), np.float32)
    part = np.asarray(waveform[:, first:first + count], np.float32)
    wave[:, :part.shape[1]] = part
    return frames, rate, wave, int(sample_rate)
