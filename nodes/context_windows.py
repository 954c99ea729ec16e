"""StableAnimator's long-video windows as ComfyUI context windows (model_options["context_handler"]).

ComfyUI's calc_cond_batch hands every model evaluation to the handler, which runs cond and uncond of each
window as one batch and fuses the windows before CFG, so core KSampler, SamplerCustomAdvanced and every CFG
or guidance node see the fused whole video, exactly as the official loop applies CFG after fusion.
The schedule (frame 0 in every window, stride window - overlap) and the triangular fusion weights come from
stableanimator_core.sampling.windows.
"""
import logging

import torch

import comfy.context_windows as cw

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.sampling.windows import triangle_weights, window_indices, window_problem
from .host_internals import cond_with, core_set_step_handles_video, core_slices_frame_conds, record_step, run_sigmas

log = logging.getLogger("StableAnimator")


def official_schedule(frames: int, handler: cw.IndexListContextHandler, model_options: dict) -> list[list[int]]:
    return window_indices(frames, handler.context_length, handler.context_overlap)


def triangular_fuse(length: int, **kwargs) -> list[float]:
    return triangle_weights(length).tolist()


class StableAnimatorWindows(cw.IndexListContextHandler):
    SCHEDULE = cw.ContextSchedule("stableanimator_official", official_schedule)
    FUSE = cw.ContextFuseMethod("stableanimator_triangular", triangular_fuse)

    def __init__(self, window: int = 16, overlap: int = 4):
        problem = window_problem(window, overlap)
        if problem:
            raise StableAnimatorError(problem)
        super().__init__(self.SCHEDULE, self.FUSE, context_length=window, context_overlap=overlap, dim=0)

    def set_step(self, timestep, model_options):
        """ComfyUI 0.3.75's set_step compares the whole per-frame timestep with the schedule (which fails along
        frames) and raises for evaluations between schedule points (dpm_2, heun). Where core does that, the step
        is only recorded here (the official schedule does not depend on it); where core is fixed, core's runs."""
        if core_set_step_handles_video():
            return super().set_step(timestep, model_options)
        step = schedule_step_of(timestep, model_options)
        if step is not None:
            record_step(self, step)

    def get_resized_cond(self, cond_in, x_in, window, device=None):
        """ComfyUI 0.3.75 slices per-frame tensors inside model_conds only for dim >= 1 (it tests `ndim < dim`), so
        along frames (dim 0) the pose frames, SVD's concat latent and adm vector would reach every window whole.
        Where core does that, every model_cond whose first dimension is the frame count is sliced here; where
        core slices them itself, core's result is used as it is."""
        resized = super().get_resized_cond(cond_in, x_in, window, device)
        if resized is None or core_slices_frame_conds():
            return resized
        return slice_frame_conds(resized, x_in.size(0), window, device)


def schedule_step_of(timestep, model_options):
    """Index in the run's sigmas of the first frame's timestep, None between schedule points or without sigmas."""
    sigmas = run_sigmas(model_options)
    if sigmas is None:
        return None
    matches = torch.isclose(sigmas, timestep.flatten()[0].to(sigmas), rtol=1e-4).nonzero().flatten()
    return int(matches[0]) if len(matches) else None


def slice_frame_conds(resized: list, frames: int, window, device=None) -> list:
    """The workaround for hosts whose get_resized_cond leaves dim-0 model_conds whole: slice each model_cond
    whose first dimension is the video's frame count to the window's frames."""
    for cond in resized:
        model_conds = dict(cond.get("model_conds", {}))
        for name, value in model_conds.items():
            tensor = getattr(value, "cond", None)
            if isinstance(tensor, torch.Tensor) and tensor.ndim > 0 and tensor.size(0) == frames:
                model_conds[name] = cond_with(value, window.get_tensor(tensor, device))
        cond["model_conds"] = model_conds
    return resized


def set_windows(model, window: int, overlap: int) -> None:
    """Install the official windows on a (cloned) ModelPatcher, with core's wrapper that sizes the memory
    ComfyUI frees for one window rather than the whole video."""
    earlier = model.model_options.get("context_handler")
    if earlier is not None and not isinstance(earlier, StableAnimatorWindows):
        # a context-window node before Apply: its windows would not hold frame 0, so Apply's take their place
        log.warning("StableAnimator Apply Animator: the MODEL came with another node's context windows (%s, e.g. "
                    "Context Windows (Manual)); Apply Animator replaces them with its own (window %d, overlap %d). "
                    "Set the window and overlap on Apply Animator and remove that node.",
                    type(earlier).__name__, window, overlap)
    model.model_options["context_handler"] = StableAnimatorWindows(window, overlap)
    cw.create_prepare_sampling_wrapper(model)


def window_length(model, default: int = 16) -> int:
    handler = model.model_options.get("context_handler")
    return handler.context_length if isinstance(handler, cw.IndexListContextHandler) else default
