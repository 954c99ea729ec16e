"""Reading a driving video: frames resized on read and resampled to a frame rate, and its audio cut to the same
span, streaming with PyAV so that the clip's full-resolution frames are never held at once. No ComfyUI here."""
from .clip import ClipInfo, follow_aspect, open_clip, probe
from .frames import read_frames, sample_times
from .audio import read_audio
from .read import VideoRead, read_video

__all__ = ["ClipInfo", "follow_aspect", "open_clip", "probe", "read_frames", "sample_times", "read_audio",
           "VideoRead", "read_video"]
