"""Video in, video out on the real host with core nodes only around the pack's Video Frames: Load Video -> Video
Frames (start offset, another frame rate) -> Create Video (frames, fps, audio) -> Save Video (mp4, h264), then
the written file is read back: the marker frame is at the expected index and the click at that frame's time."""
import pytest

from fixtures.video_clips import click_time, read_back, write_clip

pytestmark = [pytest.mark.host]
MARKER_AT = 1.2        # seconds: source frame 36 at 30 fps, and the click
START, FPS = 0.4, 15.0
EXPECTED = round((MARKER_AT - START) * FPS)     # output frame 12, at 0.8 s


@pytest.fixture(scope="module")
def host(comfy_host):
    write_clip(comfy_host.input_dir / "align.mp4", width=160, height=96, fps=30, frames=60,
               marker=round(MARKER_AT * 30), click=MARKER_AT)
    return comfy_host


def prompt(prefix, audio_from_frames=True):
    p = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": "align.mp4"}},
        "2": {"class_type": "StableAnimatorVideoFrames", "inputs": {
            "video": ["1", 0], "width": 128, "height": 64, "size": "width x height", "fit": "stretch (official)",
            "fps": FPS, "start_time": START, "duration": 0.0, "frame_cap": 0}},
        "3": {"class_type": "CreateVideo", "inputs": {"images": ["2", 0], "fps": ["2", 1], "audio": ["2", 2]}},
        "4": {"class_type": "SaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": prefix, "format": "mp4",
                                                    "codec": "h264"}},
    }
    if not audio_from_frames:    # the whole clip's audio from core's Get Video Components: not cut to the start
        p["5"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}}
        p["3"]["inputs"]["audio"] = ["5", 1]
    return p


def written(host, outputs):
    item = next(v[0] for v in outputs["4"].values() if isinstance(v, list) and v and isinstance(v[0], dict))
    return host.output_dir / item["subfolder"] / item["filename"]


def marker_and_click(path):
    frames, times, audio, rate = read_back(path)
    white = [i for i, f in enumerate(frames) if f[..., 1].mean() > 200]
    return frames, times, white, click_time(audio, rate), rate


def test_marker_frame_and_click_land_together_in_the_saved_mp4(host):
    frames, times, white, click, rate = marker_and_click(written(host, host.run(prompt("align/ok"), timeout=300)))
    assert len(frames) == round((2.0 - START) * FPS) == 24
    assert white == [EXPECTED]
    assert abs(times[EXPECTED] - EXPECTED / FPS) < 1e-3
    # the click within 5 ms of the marker frame's time (aac frames are 1024 samples; placement is by timestamp)
    assert abs(click - times[EXPECTED]) < 5e-3, (click, times[EXPECTED])


def test_audio_not_cut_to_the_start_is_caught(host):
    """The check above fails when the audio is the whole clip's (not cut to start_time): the click is then
    START seconds late. This guards the test itself."""
    _, times, white, click, _ = marker_and_click(written(host, host.run(prompt("align/uncut", False), timeout=300)))
    assert white == [EXPECTED]
    assert abs(click - times[EXPECTED] - START) < 5e-3
