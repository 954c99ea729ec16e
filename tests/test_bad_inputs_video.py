"""Bad video inputs queued on the real host through core Load Video -> Video Frames: the user sees a message that
names the problem and the fix (or, for clips that must work, the prompt runs), and the server then still runs a
good prompt. Run with -s to see the messages."""
import itertools

import av
import numpy as np
import pytest

from fixtures.catalogue import failed_prompt
from fixtures.video_clips import write_clip

pytestmark = [pytest.mark.host]
CAPS = itertools.count(1)


@pytest.fixture(scope="module")
def host(comfy_host):
    inp = comfy_host.input_dir
    write_clip(inp / "vid_good.mp4", width=96, height=64, frames=12, fps=12, click=0.5)
    (inp / "vid_not_a_video.mp4").write_text("hello, I am a text file with a video's name\n" * 50)
    data = (inp / "vid_good.mp4").read_bytes()
    (inp / "vid_truncated.mp4").write_bytes(data[: len(data) // 2])
    (inp / "vid_bad_header.mp4").write_bytes(b"\x00garbage!" * 8 + data[72:])
    write_clip(inp / "vid_corrupt.mp4", width=96, height=64, frames=60, fps=30)
    corrupt = bytearray((inp / "vid_corrupt.mp4").read_bytes())     # a fifth of the middle overwritten
    n = len(corrupt)
    corrupt[n // 3:n // 3 + n // 5] = np.random.default_rng(0).integers(0, 256, n // 5, dtype=np.uint8).tobytes()
    (inp / "vid_corrupt.mp4").write_bytes(bytes(corrupt))
    write_clip(inp / "vid_long.mkv", width=96, height=64, frames=60, fps=30)
    mkv = (inp / "vid_long.mkv").read_bytes()
    (inp / "vid_truncated.mkv").write_bytes(mkv[: len(mkv) // 2])
    write_clip(inp / "vid_empty.mkv", frames=0)      # a video stream with no frames (and a second of audio)
    write_clip(inp / "vid_audio_only.mp4", frames=0)  # mp4 drops the empty video track: an audio file
    write_clip(inp / "vid_vfr.mp4", frames=7, times=[0.0, 0.1, 0.12, 0.3, 0.5, 0.55, 0.9], fps=10)
    write_clip(inp / "vid_mute.mp4", width=96, height=64, frames=10, fps=10, audio=False)
    # 4K at 60 fps, half a second: read resized, one full-size frame at a time
    write_clip(inp / "vid_4k60.mp4", width=3840, height=2160, frames=30, fps=60)
    return comfy_host


def video_prompt(file, prefix="bad_video/out", **frames_inputs):
    inputs = {"video": ["1", 0], "width": 128, "height": 128, "size": "width x height", "fit": "stretch (official)",
              "fps": 0.0, "start_time": 0.0, "duration": 0.0, "frame_cap": 0}
    inputs.update(frames_inputs)
    return {
        "1": {"class_type": "LoadVideo", "inputs": {"file": file}},
        "2": {"class_type": "StableAnimatorVideoFrames", "inputs": inputs},
        "3": {"class_type": "CreateVideo", "inputs": {"images": ["2", 0], "fps": ["2", 1], "audio": ["2", 2]}},
        "4": {"class_type": "SaveVideo", "inputs": {"video": ["3", 0], "filename_prefix": prefix,
                                                    "format": "mp4", "codec": "h264"}},
    }


def saved(host, outputs):
    entry = outputs["4"]
    item = (entry.get("images") or entry.get("animated") or entry.get("videos") or [None])[0]
    if item is None:
        item = next(v[0] for v in entry.values() if isinstance(v, list) and v and isinstance(v[0], dict))
    return host.output_dir / item["subfolder"] / item["filename"]


def still_serves(host):
    """A good clip runs right after (frame_cap changes each time, so it really runs)."""
    out = saved(host, host.run(video_prompt("vid_good.mp4", prefix="bad_video/good", frame_cap=next(CAPS) % 12 + 1),
                               timeout=300))
    assert out.exists()


def expect_error(host, prompt, *fragments, title):
    message = failed_prompt(host, prompt, *fragments, title=title).user_message()
    still_serves(host)
    return message


def expect_runs(host, prompt, title):
    start = len(host.log())
    out = saved(host, host.run(prompt, timeout=600))
    log = host.log()[start:]
    print(f"\n[catalogue] {title}: runs, wrote {out.name}")
    still_serves(host)
    return out, log


def frames_of(path):
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        n = sum(1 for _ in c.decode(vs))
        return n, vs.codec_context.width, vs.codec_context.height, bool(c.streams.audio), float(vs.average_rate)


def test_good_clip_runs(host):
    out, _ = expect_runs(host, video_prompt("vid_good.mp4"), "good clip")
    assert frames_of(out) == (12, 128, 128, True, 12.0)


def test_file_that_is_not_a_video(host):
    expect_error(host, video_prompt("vid_not_a_video.mp4"), "vid_not_a_video.mp4", "could not be opened as a video",
                 "not a video", "re-export", title="a text file named .mp4")


def test_truncated_mp4(host):
    expect_error(host, video_prompt("vid_truncated.mp4"), "vid_truncated.mp4", "cut short", "re-export",
                 title="an mp4 cut in half (its index is lost)")


def test_corrupt_header(host):
    expect_error(host, video_prompt("vid_bad_header.mp4"), "vid_bad_header.mp4", "could not be opened",
                 title="an mp4 whose first bytes are garbage")


def test_corrupt_mp4_stops_with_where_it_broke(host):
    expect_error(host, video_prompt("vid_corrupt.mp4"), "vid_corrupt.mp4 is damaged: decoding stopped after",
                 "Make the span end before that point (start_time + duration)", title="an mp4 with garbage in the middle")
    out, _ = expect_runs(host, video_prompt("vid_corrupt.mp4", duration=0.5), "the same mp4 up to 0.5 s (the fix)")
    assert frames_of(out)[0] == 15


def test_truncated_mkv_keeps_what_is_there(host):
    out, log = expect_runs(host, video_prompt("vid_truncated.mkv"), "an mkv cut in half")
    n = frames_of(out)[0]
    assert 5 <= n < 60, n


def test_clip_with_zero_frames(host):
    expect_error(host, video_prompt("vid_empty.mkv"), "vid_empty.mkv has a video stream without frames",
                 title="a clip with zero frames")


def test_audio_file_with_a_video_name(host):
    expect_error(host, video_prompt("vid_audio_only.mp4"), "vid_audio_only.mp4 has no video stream",
                 title="an mp4 with only audio")


def test_variable_frame_rate_clip(host):
    out, _ = expect_runs(host, video_prompt("vid_vfr.mp4", fps=10.0), "variable frame rate, read at 10 fps")
    n, _, _, _, rate = frames_of(out)
    assert n == 10 and rate == 10.0


def test_4k_60fps_clip_is_read_resized(host):
    out, _ = expect_runs(host, video_prompt("vid_4k60.mp4", width=512, height=512, size="follow video aspect",
                                            fps=30.0), "4K 60 fps clip, read at 30 fps, size following the clip")
    assert frames_of(out)[:3] == (15, 512, 320)     # 3840x2160 -> 512x288 -> snapped 512x320


def test_clip_without_audio(host):
    out, log = expect_runs(host, video_prompt("vid_mute.mp4"), "a clip without audio")
    assert "has no audio" in log
    n, _, _, has_audio, _ = frames_of(out)
    assert n == 10 and has_audio       # silence of the frames' length, so Create Video still has a track


def test_start_past_the_end(host):
    expect_error(host, video_prompt("vid_good.mp4", start_time=5.0), "start_time 5 s", "past the end",
                 "lasts 1.00 s", title="start_time past the clip's end")


def test_duration_past_the_end_reads_what_is_there(host):
    out, log = expect_runs(host, video_prompt("vid_good.mp4", start_time=0.5, duration=10.0),
                           "duration past the clip's end")
    assert frames_of(out)[0] == 6 and "before the requested end" in log


def test_frame_rate_above_the_clips(host):
    expect_error(host, video_prompt("vid_good.mp4", fps=24.0), "fps 24 is above", "own frame rate (12 fps)",
                 "Set fps to 0", title="fps above the clip's own")


def test_size_not_multiple_of_64_is_refused_before_running(host):
    expect_error(host, video_prompt("vid_good.mp4", width=100), "multiple of 64", title="width 100")
