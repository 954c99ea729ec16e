"""Video Frames: a core VIDEO (Load Video) read as frames at the working size and a chosen frame rate, with its
audio cut to the same span. The decoding lives in stableanimator_core/video; this is the ComfyUI side."""

import torch
from comfy_api.latest import io

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.video import read_video
from ..stableanimator_core.video.read import SIZES, resample_tensor
from .images import FIT_OPTIONS, fit_key, validate_size
from .validation import check_inputs, known

CATEGORY = "StableAnimator"


def _stream_source(video):
    """A path or BytesIO to decode from, when the VIDEO is a file (core Load Video) or a type that streams its own;
    None for frames already in memory (core Create Video), whose default stream source would encode them first."""
    getter = getattr(type(video), "get_stream_source", None)
    if getter is None:
        return None
    try:
        from comfy_api.input import VideoInput
        if getter is VideoInput.get_stream_source:
            return None
    except ImportError:
        pass
    return video.get_stream_source()


class StableAnimatorVideoFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorVideoFrames",
            display_name="Video Frames",
            category=CATEGORY,
            description="Reads a video (from core Load Video) as frames at the working size and a chosen frame "
                        "rate, streaming: each frame is resized as it is decoded, so a long full-HD clip never "
                        "sits in memory at full resolution. Also outputs the frame rate used and the clip's audio "
                        "cut to exactly the returned frames, for core Create Video.",
            inputs=[
                io.Video.Input("video", tooltip="A video from core Load Video (mp4, mov, webm, mkv; any size and "
                                                "frame rate)."),
                io.Int.Input("width", default=512, min=64, max=4096, step=64,
                             tooltip="Working width in pixels, a multiple of 64. With size 'follow video aspect' "
                                     "only the longer of width and height counts."),
                io.Int.Input("height", default=512, min=64, max=4096, step=64,
                             tooltip="Working height in pixels, a multiple of 64. The official models know "
                                     "512x512 and 576x1024."),
                io.Combo.Input("size", options=list(SIZES), default=SIZES[0],
                               tooltip="'width x height': exactly that size. 'follow video aspect': the clip's "
                                       "aspect with the long side max(width, height), both sides snapped to "
                                       "multiples of 64 (a 1080x1920 clip at 512 gives 320x512)."),
                io.Combo.Input("fit", options=FIT_OPTIONS, default=FIT_OPTIONS[0],
                               tooltip="How a frame of another shape is brought to the size: stretch (as the "
                                       "official pipeline), crop (centre crop to the aspect, then resize) or pad "
                                       "(resize to fit inside, black bars)."),
                io.Float.Input("fps", default=0.0, min=0.0, max=240.0, step=0.5,
                               tooltip="Frame rate to sample the clip at; 0 = the clip's own rate. Lower rates "
                                       "pick the frame shown at each time (no blending); a rate above the clip's "
                                       "own is refused (it would only repeat frames)."),
                io.Float.Input("start_time", default=0.0, min=0.0, max=86400.0, step=0.1,
                               tooltip="Seconds into the clip where the first frame is taken."),
                io.Float.Input("duration", default=0.0, min=0.0, max=86400.0, step=0.1,
                               tooltip="Seconds to read from start_time; 0 = to the end of the clip."),
                io.Int.Input("frame_cap", default=0, min=0, max=100000,
                             tooltip="At most this many frames; 0 = no cap."),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="The frames at the working size."),
                io.Float.Output(display_name="fps", tooltip="The frame rate of the frames: link it to Create "
                                                            "Video's fps. (Conditioning's fps is the official "
                                                            "motion value 7, not this rate.)"),
                io.Audio.Output(display_name="audio",
                                tooltip="The clip's audio over exactly the returned frames (silence of that "
                                        "length when the clip has none): link it to Create Video's audio."),
                io.Int.Output(display_name="frame_count", tooltip="How many frames were read."),
                io.Int.Output(display_name="width", tooltip="The working width: link it on as the video size."),
                io.Int.Output(display_name="height", tooltip="The working height: link it on as the video size."),
            ],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, rules=[
            lambda v: validate_size(v["width"], v["height"]) if known(v, "width", "height") else None])

    @classmethod
    def execute(cls, video, width, height, size, fit, fps, start_time, duration, frame_cap) -> io.NodeOutput:
        import comfy.model_management
        import comfy.utils

        bar = None

        def progress(done, total):
            nonlocal bar
            comfy.model_management.throw_exception_if_processing_interrupted()
            if total:
                if bar is None:
                    bar = comfy.utils.ProgressBar(total)
                bar.update_absolute(min(done, total), total)

        source = _stream_source(video)
        if source is not None:
            got = read_video(source, width, height, size, fit_key(fit), fps, start_time, duration, frame_cap,
                             progress)
            frames, rate, wave, sr = got.frames, got.fps, got.waveform, got.sample_rate
        else:   # frames already in memory (core Create Video): select and resize those
            if not hasattr(video, "get_components"):
                raise StableAnimatorError("the video input is not a core VIDEO; connect core Load Video")
            comp = video.get_components()
            audio = comp.audio
            wave_in = audio["waveform"][0].float().cpu().numpy() if audio is not None else None
            sr_in = int(audio["sample_rate"]) if audio is not None else 0
            frames, rate, wave, sr = resample_tensor(comp.images, comp.frame_rate, wave_in, sr_in, width, height,
                                                     size, fit_key(fit), fps, start_time, duration, frame_cap)
        audio_out = {"waveform": torch.from_numpy(wave).unsqueeze(0), "sample_rate": int(sr)}
        return io.NodeOutput(frames, float(rate), audio_out, int(frames.shape[0]), int(frames.shape[2]),
                             int(frames.shape[1]))


NODES = [StableAnimatorVideoFrames]
