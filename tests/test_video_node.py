"""Video Frames in process: a VIDEO that is already frames in memory (core Create Video's output) is resampled
like a file; a file VIDEO reports its progress through ComfyUI's progress bar."""
from fractions import Fraction

import torch

from fixtures.video_clips import write_clip


def test_video_from_components_is_resampled_and_cut(pack):
    from comfy_api.latest._input_impl.video_types import VideoFromComponents
    from comfy_api.latest._util import VideoComponents
    images = torch.zeros(30, 48, 80, 3)
    images[:, 0, 0, 0] = torch.arange(30) / 100          # frame i codes i in one pixel
    wave = torch.zeros(1, 1, 3000)                        # 1 s at 3 kHz, a click at 0.5 s
    wave[0, 0, 1500] = 1.0
    video = VideoFromComponents(VideoComponents(images=images, audio={"waveform": wave, "sample_rate": 3000},
                                                frame_rate=Fraction(30)))
    node = pack.nodes.video.StableAnimatorVideoFrames
    frames, fps, audio, n, w, h = node.execute(video=video, width=64, height=64, size="width x height",
                                               fit="stretch (official)", fps=10.0, start_time=0.2, duration=0.0,
                                               frame_cap=0).result
    assert (n, w, h, fps) == (8, 64, 64, 10.0) and frames.shape == (8, 64, 64, 3)
    assert audio["waveform"].shape == (1, 1, 2400) and audio["sample_rate"] == 3000
    assert int(audio["waveform"][0, 0].argmax()) == 900   # 0.5 s - 0.2 s
    follow = node.execute(video=video, width=512, height=512, size="follow video aspect", fit="crop", fps=0.0,
                          start_time=0.0, duration=0.0, frame_cap=5).result
    assert follow[0].shape == (5, 320, 512, 3) and follow[1] == 30.0     # 80x48 -> 512x307 -> 512x320
    silent = VideoFromComponents(VideoComponents(images=images, audio=None, frame_rate=Fraction(30)))
    _, _, audio, n, _, _ = node.execute(video=silent, width=64, height=64, size="width x height", fit="pad",
                                        fps=10.0, start_time=0.2, duration=0.0, frame_cap=0).result
    assert n == 8 and audio["sample_rate"] == 44100 and audio["waveform"].shape == (1, 1, 35280)   # 0.8 s
    assert not audio["waveform"].any()


def test_progress_bar_counts_the_frames(pack, tmp_path, monkeypatch):
    import comfy.utils
    seen = []
    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK", lambda value, total, preview, node_id=None: seen.append((value, total)))
    clip = write_clip(tmp_path / "c.mp4", width=64, height=64, frames=20, fps=20, audio=False)
    source = type("V", (), {"get_stream_source": lambda self: str(clip)})()
    node = pack.nodes.video.StableAnimatorVideoFrames
    out = node.execute(video=source, width=64, height=64, size="width x height", fit="pad", fps=10.0,
                       start_time=0.0, duration=0.0, frame_cap=0).result
    assert out[3] == 10
    assert seen and seen[-1] == (10, 10) and len(seen) == 10
    seen.clear()    # a cap above what the clip holds: the bar still ends full
    out = node.execute(video=source, width=64, height=64, size="width x height", fit="pad", fps=10.0,
                       start_time=0.0, duration=0.0, frame_cap=500).result
    assert out[3] == 10 and seen[-1] == (10, 10), seen[-3:]
