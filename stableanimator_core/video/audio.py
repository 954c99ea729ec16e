"""The clip's audio over exactly the span of the returned frames, placed by its timestamps (so a stream that
starts late, a seek, or encoder priming cannot shift it against the frames)."""
from __future__ import annotations

import logging

import av
import numpy as np

from .clip import name_of, open_clip

log = logging.getLogger("StableAnimator")

_INT_SCALE = {"s16": 2 ** 15, "s16p": 2 ** 15, "s32": 2 ** 31, "s32p": 2 ** 31, "u8": 2 ** 7, "u8p": 2 ** 7}


def _planar_float(frame) -> np.ndarray:
    """An av.AudioFrame as float32 (channels, samples) in [-1, 1]."""
    arr = frame.to_ndarray()
    fmt = frame.format.name
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:                     # packed: (1, samples * channels), interleaved
        arr = arr.reshape(-1, channels).T
    arr = arr.astype(np.float32)
    if fmt.startswith("u8"):
        arr -= 128
    if fmt in _INT_SCALE:
        arr /= _INT_SCALE[fmt]
    return arr


def read_audio(source, info, start: float, length: float):
    """(waveform float32 (channels <= 2, samples), sample_rate) covering [start, start + length) of the clip,
    zeros where the stream has no samples; None when the clip has no audio stream. Streams of more than two
    channels keep the first two (front left and right): core Save Video writes mono or stereo."""
    container = open_clip(source)
    try:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        rate = int(stream.sample_rate or stream.codec_context.sample_rate or 0)
        if rate <= 0:
            log.warning("StableAnimator: the audio of %s has no sample rate; it is left out", name_of(source))
            return None
        channels = min(2, max(1, stream.codec_context.channels or 1))
        n = int(round(length * rate))
        first = int(round(start * rate))
        wave = np.zeros((channels, n), np.float32)
        if start > 0:
            try:
                container.seek(int((start + info.origin) / stream.time_base), stream=stream, backward=True)
            except av.FFmpegError:
                container.seek(0)
        position = None                                  # next sample index when a frame carries no time
        try:
            for frame in container.decode(stream):
                if frame.time is not None:
                    at = int(round((frame.time - info.origin) * frame.sample_rate))
                else:
                    at = position if position is not None else 0
                samples = _planar_float(frame)
                if frame.sample_rate != rate:
                    log.warning("StableAnimator: the audio of %s changes its sample rate; it is left out",
                                name_of(source))
                    return np.zeros((channels, n), np.float32), rate
                position = at + samples.shape[1]
                lo, hi = max(at, first), min(position, first + n)
                if hi > lo:
                    src = samples[:channels] if samples.shape[0] >= channels else np.repeat(samples, channels, 0)
                    wave[:, lo - first:hi - first] = src[:, lo - at:hi - at]
                if at >= first + n:
                    break
        except av.FFmpegError as e:
            log.warning("StableAnimator: the audio of %s could not be decoded to the end (%s); the rest of the span "
                        "is silent", name_of(source), e)
        return wave, rate
    finally:
        container.close()
