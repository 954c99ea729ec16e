"""StableAnimator's long-video windows as ComfyUI context windows (model_options["context_handler"]).

ComfyUI's calc_cond_batch hands every model evaluation to the handler, which runs cond and uncond of each
window as one batch and fuses the windows before CFG, so core KSampler, SamplerCustomAdvanced and every CFG
or guidance node see the fused whole video, exactly as the official loop applies CFG after fusion.
The schedule (frame 0 in every window, stride window - overlap) and the triangular fusion weights come from
stableanimator_core.sampling.windows.
"""
import torch

import comfy.context_windows as cw

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.sampling.windows import triangle_weights, window_indices, window_problem


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
        """Core compares the whole per-frame timestep with the schedule (which fails along frames) and raises for
        evaluations between schedule points (dpm_2, heun). The official schedule does not depend on the step, so
        the step is only recorded, for callbacks that read it."""
        sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
        if sigmas is not None:
            matches = torch.isclose(sigmas, timestep.flatten()[0].to(sigmas), rtol=1e-4).nonzero().flatten()
            if len(matches):
                self._step = int(matches[0])

    def get_resized_cond(self, cond_in, x_in, window, device=None):
        """Core's version slices per-frame tensors inside model_conds only for dim >= 1 (0.3.75 tests
        `ndim < dim`), so along frames (dim 0) the pose frames, SVD's concat latent and adm vector would reach
        every window whole. Slice every model_cond whose first dimension is the video's frame count."""
        resized = super().get_resized_cond(cond_in, x_in, window, device)
        if resized is None:
            return None
        frames = x_in.size(0)
        for cond in resized:
            model_conds = dict(cond.get("model_conds", {}))
            for name, value in model_conds.items():
                tensor = getattr(value, "cond", None)
                if isinstance(tensor, torch.Tensor) and tensor.ndim > 0 and tensor.size(0) == frames:
                    model_conds[name] = value._copy_with(window.get_tensor(tensor, device))
            cond["model_conds"] = model_conds
        return resized


def set_windows(model, window: int, overlap: int) -> None:
    """Install the official windows on a (cloned) ModelPatcher, with core's wrapper that sizes the memory
    ComfyUI frees for one window rather than the whole video."""
    model.model_options["context_handler"] = StableAnimatorWindows(window, overlap)
    cw.create_prepare_sampling_wrapper(model)


def window_length(model, default: int = 16) -> int:
    handler = model.model_options.get("context_handler")
    return handler.context_length if isinstance(handler, cw.IndexListContextHandler) else default
