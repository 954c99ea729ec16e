"""Animator Sampler: a thin convenience around core sampling, and the chunked decode.

Everything the method needs while sampling is carried by the MODEL (Apply Animator: ID adapter, pose,
official windows as ComfyUI context windows; StableAnimator HJB: the face optimisation as a post-CFG
function), so a core KSampler or SamplerCustomAdvanced samples it too. What the Sampler adds:
- the official initial noise: one window's worth, repeated over the video;
- the official per-frame guidance (cfg_min at the first frame rising linearly to cfg_max at the last) as a
  sampler_cfg_function, core's VideoLinearCFGGuidance formula (tests/test_sampler.py checks they are equal).
Schedules, samplers and denoise follow KSampler exactly (comfy.sample.sample).
The official noise is also a NOISE node (Animator Noise), for SamplerCustomAdvanced.
"""
import torch

import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
from comfy_api.latest import io

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.sampling.windows import cfg_scales, periodic_noise
from .context_windows import window_length
from .validation import check_inputs, known, node_name, require_finite
from .vae_tiling import decode_video, tiling_problem

CATEGORY = "StableAnimator"


def per_frame_cfg(cfg_min: float):
    """sampler_cfg_function: guidance cfg_min at frame 0 rising linearly to the sampler's cfg at the last frame
    (official min/max_guidance_scale). Runs on the fused whole video, after the context windows."""
    def cfg_function(args):
        cond, uncond = args["cond"], args["uncond"]
        scale = cfg_scales(cond.shape[0], cfg_min, float(args["cond_scale"])).to(cond)
        return uncond + scale.view((-1,) + (1,) * (cond.ndim - 1)) * (cond - uncond)
    return cfg_function


def with_per_frame_cfg(model, cfg_min: float, cfg_max: float):
    if cfg_min == cfg_max:
        return model
    if "sampler_cfg_function" in model.model_options:
        raise StableAnimatorError(
            f"cfg_min ({cfg_min}) differs from cfg_max ({cfg_max}) but the MODEL already has a CFG function (e.g. "
            "VideoLinearCFGGuidance or RescaleCFG), and ComfyUI keeps only one: set cfg_min equal to cfg_max to keep "
            "the MODEL's, or remove that node to use the per-frame ramp")
    m = model.clone()
    m.set_model_sampler_cfg_function(per_frame_cfg(cfg_min), disable_cfg1_optimization=True)
    return m


class PeriodicNoise:
    """A NOISE for SamplerCustomAdvanced (core's interface: `seed` and generate_noise(latent dict)): the latent's
    seeded noise as KSampler makes it, with its first `window` frames repeated over the video (official)."""

    def __init__(self, seed: int, window: int = 16):
        self.seed, self.window = seed, window

    def generate_noise(self, input_latent: dict) -> torch.Tensor:
        noise = comfy.sample.prepare_noise(input_latent["samples"], self.seed, input_latent.get("batch_index"))
        return periodic_noise(noise, self.window)


def run_sampler(model, positive, negative, latent, seed, steps, cfg_min, cfg_max, sampler_name, scheduler, denoise):
    samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    # Official initial noise: one window's worth, repeated over the video.
    noise = PeriodicNoise(seed, window_length(model)).generate_noise({**latent, "samples": samples})
    model = with_per_frame_cfg(model, cfg_min, cfg_max)
    out = comfy.sample.sample(model, noise, steps, cfg_max, sampler_name, scheduler, positive, negative, samples,
                              denoise=denoise, noise_mask=latent.get("noise_mask"),
                              callback=latent_preview.prepare_callback(model, steps),
                              disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    result = latent.copy()
    result["samples"] = out
    return result


class StableAnimatorSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorSampler",
            display_name="Animator Sampler",
            category=CATEGORY,
            description="KSampler with the official StableAnimator initial noise (one window of noise repeated over "
                        "the video) and per-frame CFG from cfg_min to cfg_max. The long-video windows come from "
                        "Apply Animator and HJB from the HJB node, so a core KSampler works too.",
            inputs=[
                io.Model.Input("model", tooltip="MODEL from Apply Animator (optionally through HJB Face Optimisation)."),
                io.Conditioning.Input("positive", tooltip="positive from Animator Conditioning."),
                io.Conditioning.Input("negative", tooltip="negative from Animator Conditioning."),
                io.Latent.Input("latent", tooltip="latent from Animator Conditioning (one entry per frame)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Seed of the initial noise (official scripts: 23123134)."),
                io.Int.Input("steps", default=25, min=1, max=1000, tooltip="Denoising steps. Official: 25."),
                io.Float.Input("cfg_min", default=3.0, min=0.0, max=30.0, step=0.1, round=0.01,
                               tooltip="Guidance of the first frame; it rises linearly to cfg_max at the last frame. Official: 3.0."),
                io.Float.Input("cfg_max", default=3.0, min=0.0, max=30.0, step=0.1, round=0.01,
                               tooltip="Guidance of the last frame (KSampler's cfg). Official: 3.0 (constant)."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="euler",
                               tooltip="euler reproduces the official scheduler (and is the official sampler for HJB)."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="karras",
                               tooltip="karras on SVD's sigmas (700 to 0.002) is the official schedule."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Fraction of the schedule to run; 1.0 generates from pure noise."),
            ],
            outputs=[io.Latent.Output(display_name="LATENT", tooltip="The video latent; decode with Decode Video.")],
        )

    @classmethod
    def validate_inputs(cls, **values):   # sampler_name/scheduler combos: ComfyUI 0.3.75 checks no V3 combo
        return check_inputs(cls, values)

    @classmethod
    def execute(cls, model, positive, negative, latent, seed, steps, cfg_min, cfg_max, sampler_name, scheduler,
                denoise) -> io.NodeOutput:
        require_finite(cls, "latent", latent["samples"])
        return io.NodeOutput(run_sampler(model, positive, negative, latent, seed, steps, cfg_min, cfg_max, sampler_name,
                                         scheduler, denoise))


class StableAnimatorNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorNoise",
            display_name="Animator Noise",
            category=CATEGORY,
            description="The official StableAnimator initial noise as a NOISE for SamplerCustomAdvanced: the seeded "
                        "noise of one window, repeated over the video (the Animator Sampler makes the same noise).",
            inputs=[
                io.Int.Input("noise_seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Seed of the noise (official scripts: 23123134); the same seed as the Animator "
                                     "Sampler's gives the same noise."),
                io.Int.Input("window", default=16, min=1, max=1024,
                             tooltip="Period in frames: the window of Apply Animator (official: 16)."),
            ],
            outputs=[io.Noise.Output(display_name="NOISE", tooltip="For SamplerCustomAdvanced's noise input.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values)

    @classmethod
    def execute(cls, noise_seed, window) -> io.NodeOutput:
        return io.NodeOutput(PeriodicNoise(noise_seed, window))


class StableAnimatorDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorDecode",
            display_name="Decode Video",
            category=CATEGORY,
            description="Decodes a video latent with SVD's temporal VAE in clips of `chunk` frames, like the official "
                        "decode_chunk_size (the temporal decoder smooths within a clip). With `tile` > 0 each clip is "
                        "decoded in overlapping spatial tiles (all of the clip's frames together in every tile), "
                        "which caps the decode memory on small cards.",
            inputs=[io.Vae.Input("vae", tooltip="SVD-xt's VAE (from the StableAnimator loader)."),
                    io.Latent.Input("latent", tooltip="The sampled video latent."),
                    io.Int.Input("chunk", default=4, min=1, max=128,
                                 tooltip="Frames decoded together. Official: 4; larger is smoother and needs more memory."),
                    io.Int.Input("tile", default=0, min=0, max=4096, step=64, optional=True,
                                 tooltip="Spatial tile size in pixels; 0 decodes whole frames (official). 256-512 "
                                         "lowers the decode peak roughly with the tile's share of the frame; "
                                         "tiles are blended over `tile_overlap`, so results differ slightly at seams."),
                    io.Int.Input("tile_overlap", default=64, min=0, max=1024, step=8, optional=True,
                                 tooltip="Pixels shared by neighbouring tiles, blended linearly. More overlap, "
                                         "smaller seams, more work. Used only when tile > 0.")],
            outputs=[io.Image.Output(display_name="IMAGE", tooltip="The video frames.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, rules=[lambda v: tiling_problem(v["tile"], v["tile_overlap"])
                                                if known(v, "tile", "tile_overlap") else None])

    @classmethod
    def execute(cls, vae, latent, chunk, tile=0, tile_overlap=64) -> io.NodeOutput:
        samples = require_finite(cls, "latent", latent["samples"], kind="LATENT")
        if tiling_problem(tile, tile_overlap):
            raise StableAnimatorError(f"{node_name(cls)}: {tiling_problem(tile, tile_overlap)}")
        pbar = comfy.utils.ProgressBar(samples.shape[0])
        return io.NodeOutput(decode_video(vae, samples, chunk, tile, tile_overlap,
                                          on_clip=lambda done: pbar.update_absolute(done, samples.shape[0])))


NODES = [StableAnimatorSampler, StableAnimatorNoise, StableAnimatorDecode]
