"""stableanimator_core.video on small clips written in the test: which source frame lands at which output index,
the audio cut to the same span, the working size and fit, and the clear errors."""
import math

import numpy as np
import pytest

from fixtures.video_clips import MARKER, click_time, frame_value, write_clip
from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.video import follow_aspect, read_video
from stableanimator_core.video.read import SILENT_RATE


def source_index(frames, n_source=200):
    """For each output frame, the source frame index its red level codes (the marker gives -1)."""
    red = frames[:, :, :, 0].mean((1, 2)).numpy() * 255
    codes = np.array([frame_value(i) for i in range(n_source)])
    out = []
    for r, g in zip(red, frames[:, :, :, 1].mean((1, 2)).numpy() * 255):
        if g > 200:
            out.append(-1)
            continue
        # frame_value repeats every 20 frames: the tests keep clips short or check near a known index
        out.append(int(np.argmin(np.abs(codes[:20] - r))))
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """2 s at 30 fps, 160x96, marker (white) at frame 36 = 1.2 s, click at 1.2 s."""
    return str(write_clip(tmp_path_factory.mktemp("v") / "clip.mp4", marker=36, click=1.2))


def test_own_rate_reads_every_frame_in_order(clip):
    got = read_video(clip, 64, 64)
    assert got.fps == 30 and got.frames.shape == (60, 64, 64, 3)
    idx = source_index(got.frames)
    assert idx[36] == -1
    assert [i for k, i in enumerate(idx) if k != 36] == [k % 20 for k in range(60) if k != 36]
    assert got.waveform.shape == (2, 96000) and got.sample_rate == 48000 and got.has_audio


def test_marker_and_click_with_start_offset_and_lower_rate(clip):
    # 15 fps from 0.4 s: output k shows the source at 0.4 + k/15; the marker (1.2 s) is output 12
    got = read_video(clip, 64, 64, fps=15, start_time=0.4)
    idx = source_index(got.frames)
    assert idx.index(-1) == 12 and idx.count(-1) == 1
    assert idx[:3] == [12, 14, 16]                          # source frames 12, 14, 16 (0.4 s, 0.4667 s, 0.533 s)
    assert got.frames.shape[0] == 24                        # (2.0 - 0.4) * 15
    assert got.waveform.shape[1] == round(24 / 15 * 48000)  # exactly the frames' span
    assert abs(click_time(got.waveform, got.sample_rate) - 12 / 15) < 1.5e-3


def test_duration_and_frame_cap(clip):
    assert read_video(clip, 64, 64, start_time=0.5, duration=0.5).frames.shape[0] == 15
    capped = read_video(clip, 64, 64, fps=10, frame_cap=7)
    assert capped.frames.shape[0] == 7 and capped.waveform.shape[1] == round(0.7 * 48000)
    assert source_index(capped.frames) == [0, 3, 6, 9, 12, 15, 18]


def test_a_rate_that_does_not_divide_the_clip_rate(clip):
    # 12 fps: output k at k/12 s shows source floor(k * 2.5)
    got = read_video(clip, 64, 64, fps=12, duration=1.0)
    assert got.frames.shape[0] == 12
    assert source_index(got.frames) == [math.floor(k * 2.5) % 20 for k in range(12)]


def test_variable_frame_rate_picks_the_frame_shown_at_each_time(tmp_path):
    times = [0.0, 0.1, 0.12, 0.3, 0.5, 0.55, 0.9]
    path = write_clip(tmp_path / "vfr.mp4", frames=len(times), times=times, fps=10, audio=False)
    got = read_video(str(path), 64, 64, fps=10)
    # t = 0, .1, .2, ..., .9 -> frames shown then
    shown = [max(i for i, s in enumerate(times) if s <= k / 10 + 1e-9) for k in range(10)]
    assert source_index(got.frames) == shown
    assert got.frames.shape[0] == 10


def test_follow_video_aspect_snaps_to_64():
    assert follow_aspect(1080, 1920, 512, 512) == (320, 512)     # 288 -> 320
    assert follow_aspect(1920, 1080, 512, 512) == (512, 320)
    assert follow_aspect(1080, 1920, 576, 1024) == (576, 1024)
    assert follow_aspect(1080, 1350, 512, 512) == (384, 512)     # 409.6 -> 384
    assert follow_aspect(100, 4000, 512, 512) == (64, 512)       # never below 64


def test_size_follows_the_clip(clip):
    got = read_video(clip, 256, 128, size="follow video aspect")   # 160x96: long side 256 -> 256x153.6 -> 256x128
    assert got.frames.shape[1:3] == (128, 256)


def _grey_with_left_bar(i, w=160, h=96):
    img = np.full((h, w, 3), 100, np.uint8)
    img[:, :20] = 250                                  # a bright bar at the left edge
    return img


def test_fit_crop_pad_stretch(tmp_path):
    path = str(write_clip(tmp_path / "bar.mp4", frames=3, audio=False, pattern=_grey_with_left_bar))
    stretch = read_video(path, 64, 64, fit="stretch").frames[0].numpy() * 255
    crop = read_video(path, 64, 64, fit="crop").frames[0].numpy() * 255
    pad = read_video(path, 64, 64, fit="pad").frames[0].numpy() * 255
    assert stretch[:, :6].min() > 200 and abs(stretch[:, 20:].mean() - 100) < 4   # bar scaled to 8 of 64 px
    assert crop.max() < 110                            # 96x96 centre window: x 32..128, the bar is cut off
    # pad: 160x96 -> 64x38 at y = 13, black above and below, the bar at the left of the picture
    assert pad[:12].max() < 3 and pad[52:].max() < 3
    assert pad[20:45, :5].min() > 200 and abs(pad[20:45, 20:].mean() - 100) < 4


def test_display_rotation_is_applied(tmp_path):
    def top_left(i):
        img = np.zeros((128, 64, 3), np.uint8)
        img[:16, :16] = 250                            # stored picture: bright top-left corner
        return img
    path = str(write_clip(tmp_path / "rot.mp4", width=64, height=128, frames=2, audio=False, rotation=90,
                          pattern=top_left))
    got = read_video(path, 128, 64)                    # displayed 128 wide, 64 high
    assert got.info.width == 128 and got.info.height == 64
    img = got.frames[0].numpy()[..., 0]
    # 90 degrees counter-clockwise: the stored top-left corner is shown at the bottom-left
    assert img[-8:, :8].min() > 0.8 and img[:8, :8].max() < 0.2


def test_clip_without_audio_gives_silence_of_the_frames_length(tmp_path):
    path = str(write_clip(tmp_path / "mute.mp4", frames=20, audio=False))
    got = read_video(path, 64, 64, fps=10)
    assert not got.has_audio and got.sample_rate == SILENT_RATE
    assert got.waveform.shape == (1, round(got.frames.shape[0] / 10 * SILENT_RATE)) and not got.waveform.any()
    assert any("no audio" in n for n in got.notes)


def test_span_past_the_end(clip):
    short = read_video(clip, 64, 64, start_time=1.5, duration=3.0)
    assert short.frames.shape[0] == 15 and any("ends at" in n for n in short.notes)
    with pytest.raises(StableAnimatorError, match="start_time 2.5 s is at or past the end"):
        read_video(clip, 64, 64, start_time=2.5)


def test_rate_above_the_clips_is_refused(clip):
    with pytest.raises(StableAnimatorError, match="fps 60 is above .* own frame rate"):
        read_video(clip, 64, 64, fps=60)
    assert read_video(clip, 64, 64, fps=30.2, duration=0.2).frames.shape[0] == 7   # 29.97 vs 30: its own rate


def test_not_a_video_truncated_and_empty(tmp_path, clip):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    with pytest.raises(StableAnimatorError, match="could not be opened as a video"):
        read_video(str(text), 64, 64)
    data = open(clip, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])            # the mp4 index (moov) is at the end: lost
    with pytest.raises(StableAnimatorError, match="could not be opened as a video|damaged"):
        read_video(str(cut), 64, 64)
    empty = str(write_clip(tmp_path / "empty.mkv", frames=0))
    with pytest.raises(StableAnimatorError, match="empty.mkv has a video stream without frames"):
        read_video(empty, 64, 64)
    audio_only = str(write_clip(tmp_path / "audio.mp4", frames=0))     # mp4 drops the empty video track
    with pytest.raises(StableAnimatorError, match="audio.mp4 has no video stream"):
        read_video(audio_only, 64, 64)
