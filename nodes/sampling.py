"""StableAnimator's sampler: KSampler-style node, plus the same parts as a GUIDER and a SAMPLER for
SamplerCustomAdvanced. Euler on ComfyUI's SVD Karras sigmas reproduces the official scheduler."""
import torch

import comfy.model_management as mm
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
from comfy_api.latest import io

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.sampling.windows import periodic_noise, window_indices
from .windowed_guider import WindowedCFGGuider
from .socket_types import HJB

CATEGORY = "StableAnimator"


@torch.no_grad()
def sample_euler_hjb(model, x, sigmas, extra_args=None, callback=None, disable=None, hjb=None):
    """Euler (k-diffusion convention: `model` returns the guided x0). At HJB steps the x0 prediction is refined
    towards the reference identity before the Euler step uses it (official EulerDiscreteSchedulerPro)."""
    extra_args = {} if extra_args is None else extra_args
    s_in = x.new_ones([x.shape[0]])
    steps = len(sigmas) - 1
    for i in range(steps):
        mm.throw_exception_if_processing_interrupted()
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if hjb is not None and hjb.active(i):
            denoised = hjb.refine(denoised, i, steps, should_stop=mm.processing_interrupted)
            mm.throw_exception_if_processing_interrupted()
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
    return x


def euler_hjb_sampler(hjb=None):
    return comfy.samplers.KSAMPLER(sample_euler_hjb, extra_options={"hjb": hjb})


def sigmas_for(model, scheduler, steps, denoise):
    """KSampler's rule: with denoise < 1 the schedule is that of steps/denoise steps, cut to the last `steps`."""
    if denoise <= 0:
        return torch.FloatTensor([])
    total = int(steps / denoise)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), scheduler, total).cpu()
    return sigmas[-(steps + 1):]


def progress_callback(model, total, windows_per_step):
    """One progress bar over steps x windows; previews of the x0 prediction after each step."""
    previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)
    pbar = comfy.utils.ProgressBar(total)
    state = {"done": 0}

    def on_window():
        state["done"] += 1
        pbar.update_absolute(min(state["done"], total), total)

    def on_step(step, x0, x, total_steps):
        state["done"] = (step + 1) * windows_per_step
        preview = previewer.decode_latent_to_preview_image("JPEG", x0) if previewer else None
        pbar.update_absolute(min(state["done"], total), total, preview)

    return on_window, on_step


def run_sampler(model, positive, negative, latent, seed, steps, cfg_min, cfg_max, sampler_name, scheduler, denoise,
                window, overlap, hjb=None):
    samples = comfy.sample.fix_empty_latent_channels(model, latent["samples"])
    frames = samples.shape[0]
    if hjb is not None:
        if sampler_name != "euler":
            raise StableAnimatorError(f"HJB face optimisation refines Euler steps: set sampler_name to euler (got {sampler_name})")
        hjb.check_frames(frames, samples.shape[-2] * 8, samples.shape[-1] * 8)
    windows = len(window_indices(frames, window, overlap))
    sigmas = sigmas_for(model, scheduler, steps, denoise)
    # Official initial noise: one window's worth, repeated over the video.
    noise = periodic_noise(comfy.sample.prepare_noise(samples, seed, latent.get("batch_index")), window)
    on_window, on_step = progress_callback(model, max(1, len(sigmas) - 1) * windows, windows)
    guider = WindowedCFGGuider(model, cfg_min, cfg_max, window, overlap, on_window=on_window)
    guider.set_conds(positive, negative)
    sampler = euler_hjb_sampler(hjb) if hjb is not None else comfy.samplers.sampler_object(sampler_name)
    out = guider.sample(noise, samples, sampler, sigmas, denoise_mask=latent.get("noise_mask"), callback=on_step,
                        disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    result = latent.copy()
    result["samples"] = out.to(mm.intermediate_device())
    return result


def guidance_inputs():
    return [
        io.Float.Input("cfg_min", default=3.0, min=0.0, max=30.0, step=0.1, round=0.01,
                       tooltip="Guidance of the first frame; it rises linearly to cfg_max at the last frame. Official: 3.0."),
        io.Float.Input("cfg_max", default=3.0, min=0.0, max=30.0, step=0.1, round=0.01,
                       tooltip="Guidance of the last frame. Official: 3.0 (constant)."),
        io.Int.Input("window", default=16, min=2, max=128,
                     tooltip="Frames per model call. Every window also holds frame 0. Official: 16 (SVD-xt was trained on 16)."),
        io.Int.Input("overlap", default=4, min=0, max=127,
                     tooltip="Frames shared by neighbouring windows (besides frame 0), blended with triangular weights. Official: 4."),
    ]


def check_window(window, overlap):
    if overlap >= window - 1:
        return f"overlap ({overlap}) must be smaller than window - 1 ({window - 1})"
    return True


class StableAnimatorSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorSampler",
            display_name="Animator Sampler",
            category=CATEGORY,
            description="Samples a StableAnimator video like KSampler, with the official long-video windows (every "
                        "window holds frame 0, triangular blending, CFG after fusion, window-periodic initial noise), "
                        "per-frame CFG from cfg_min to cfg_max, and optional HJB face optimisation.",
            inputs=[
                io.Model.Input("model", tooltip="MODEL from StableAnimator Apply."),
                io.Conditioning.Input("positive", tooltip="positive from StableAnimator Conditioning."),
                io.Conditioning.Input("negative", tooltip="negative from StableAnimator Conditioning."),
                io.Latent.Input("latent", tooltip="latent from StableAnimator Conditioning (one entry per frame)."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Seed of the initial noise (official scripts: 23123134)."),
                io.Int.Input("steps", default=25, min=1, max=1000, tooltip="Denoising steps. Official: 25."),
                *guidance_inputs()[:2],
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="euler",
                               tooltip="euler reproduces the official scheduler; HJB requires euler."),
                io.Combo.Input("scheduler", options=comfy.samplers.KSampler.SCHEDULERS, default="karras",
                               tooltip="karras on SVD's sigmas (700 to 0.002) is the official schedule."),
                io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Fraction of the schedule to run; 1.0 generates from pure noise."),
                *guidance_inputs()[2:],
                HJB.Input("hjb", optional=True, tooltip="Optional HJB face optimisation settings (StableAnimator HJB)."),
            ],
            outputs=[io.Latent.Output(display_name="LATENT", tooltip="The video latent; decode with StableAnimator Decode.")],
        )

    @classmethod
    def validate_inputs(cls, window, overlap):
        return check_window(window, overlap)

    @classmethod
    def execute(cls, model, positive, negative, latent, seed, steps, cfg_min, cfg_max, sampler_name, scheduler, denoise,
                window, overlap, hjb=None) -> io.NodeOutput:
        return io.NodeOutput(run_sampler(model, positive, negative, latent, seed, steps, cfg_min, cfg_max, sampler_name,
                                         scheduler, denoise, window, overlap, hjb))


class StableAnimatorGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorGuider",
            display_name="Animator Guider",
            category=CATEGORY,
            description="StableAnimator's windows and per-frame CFG as a GUIDER for SamplerCustomAdvanced.",
            inputs=[io.Model.Input("model", tooltip="MODEL from StableAnimator Apply."),
                    io.Conditioning.Input("positive", tooltip="positive from StableAnimator Conditioning."),
                    io.Conditioning.Input("negative", tooltip="negative from StableAnimator Conditioning."),
                    *guidance_inputs()],
            outputs=[io.Guider.Output(display_name="GUIDER", tooltip="For SamplerCustomAdvanced.")],
        )

    @classmethod
    def validate_inputs(cls, window, overlap):
        return check_window(window, overlap)

    @classmethod
    def execute(cls, model, positive, negative, cfg_min, cfg_max, window, overlap) -> io.NodeOutput:
        guider = WindowedCFGGuider(model, cfg_min, cfg_max, window, overlap)
        guider.set_conds(positive, negative)
        return io.NodeOutput(guider)


class StableAnimatorEulerSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorEulerSampler",
            display_name="Euler HJB Sampler",
            category=CATEGORY,
            description="Euler as a SAMPLER for SamplerCustomAdvanced, with optional HJB face optimisation of the x0 "
                        "prediction at the chosen steps.",
            inputs=[HJB.Input("hjb", optional=True, tooltip="Optional HJB face optimisation settings (StableAnimator HJB).")],
            outputs=[io.Sampler.Output(display_name="SAMPLER", tooltip="For SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, hjb=None) -> io.NodeOutput:
        return io.NodeOutput(euler_hjb_sampler(hjb))


class StableAnimatorDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorDecode",
            display_name="Decode Video",
            category=CATEGORY,
            description="Decodes a video latent with SVD's temporal VAE in clips of `chunk` frames, like the official "
                        "decode_chunk_size (the temporal decoder smooths within a clip).",
            inputs=[io.Vae.Input("vae", tooltip="SVD-xt's VAE (from the StableAnimator loader)."),
                    io.Latent.Input("latent", tooltip="The sampled video latent."),
                    io.Int.Input("chunk", default=4, min=1, max=128,
                                 tooltip="Frames decoded together. Official: 4; larger is smoother and needs more memory.")],
            outputs=[io.Image.Output(display_name="IMAGE", tooltip="The video frames.")],
        )

    @classmethod
    def execute(cls, vae, latent, chunk) -> io.NodeOutput:
        samples = latent["samples"]
        pbar = comfy.utils.ProgressBar(samples.shape[0])
        frames = []
        for start in range(0, samples.shape[0], chunk):
            mm.throw_exception_if_processing_interrupted()
            part = vae.decode(samples[start:start + chunk])
            frames.append(part.reshape(-1, *part.shape[-3:]))
            pbar.update_absolute(min(start + chunk, samples.shape[0]), samples.shape[0])
        return io.NodeOutput(torch.cat(frames))


NODES = [StableAnimatorSampler, StableAnimatorGuider, StableAnimatorEulerSampler, StableAnimatorDecode]
