"""A GUIDER that runs StableAnimator's windows: per window one batched cond+uncond model call on that window's
frames (frame 0 included), predictions fused with triangular weights, then per-frame CFG on the fused result."""
import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.patcher_extension
import comfy.samplers
from comfy.conds import CONDConstant

from ..stableanimator_core.sampling.windows import cfg_scales, triangle_weights, window_indices


def window_conds(conds, index: torch.Tensor, frames: int):
    """Per-frame conditioning of a window: tensors batched over the video's frames are sliced to the window;
    SVD's frame count becomes the window's length."""
    if conds is None:
        return None
    out = []
    for c in conds:
        c = c.copy()
        model_conds = {}
        for name, value in c.get("model_conds", {}).items():
            if name == "num_video_frames":
                value = CONDConstant(len(index))
            elif isinstance(getattr(value, "cond", None), torch.Tensor) and value.cond.shape[0] == frames and frames > 1:
                value = value._copy_with(value.cond[index.to(value.cond.device)])
            model_conds[name] = value
        c["model_conds"] = model_conds
        out.append(c)
    return out


class WindowedCFGGuider(comfy.samplers.CFGGuider):
    def __init__(self, model_patcher, cfg_min=3.0, cfg_max=3.0, window=16, overlap=4, on_window=None):
        super().__init__(model_patcher)
        self.cfg_min, self.cfg_max = cfg_min, cfg_max
        self.window, self.overlap = window, overlap
        self.on_window = on_window     # called after every window (progress)
        self.cfg = cfg_max             # what other code reading .cfg sees
        self.model_options = comfy.model_patcher.create_model_options_clone(model_patcher.model_options)
        comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREPARE_SAMPLING, "stableanimator_windows",
                                                     self.window_memory, self.model_options, is_model_options=True)

    def window_memory(self, executor, model, noise_shape, conds, model_options=None):
        """ComfyUI sizes the memory it frees for a model call on every frame at once; one window is all a
        call here ever holds, so long videos do not push the UNet into low-VRAM mode."""
        frames = min(noise_shape[0], self.window)
        return executor(model, [frames, *noise_shape[1:]], conds, model_options=model_options)

    def predict_noise(self, x, timestep, model_options={}, seed=None):
        frames = x.shape[0]
        positive, negative = self.conds.get("positive"), self.conds.get("negative")
        skip_uncond = self.cfg_min == self.cfg_max == 1.0 and not model_options.get("sampler_post_cfg_function")
        cond_sum, uncond_sum = torch.zeros_like(x), torch.zeros_like(x)
        weight_sum = torch.zeros(frames, dtype=x.dtype, device=x.device)
        for frame_ids in window_indices(frames, self.window, self.overlap):
            mm.throw_exception_if_processing_interrupted()
            index = torch.tensor(frame_ids, device=x.device)
            weight = triangle_weights(len(frame_ids)).to(x)
            cond, uncond = comfy.samplers.calc_cond_batch(
                self.inner_model, [window_conds(positive, index, frames), None if skip_uncond else window_conds(negative, index, frames)],
                x[index], timestep[index], model_options)
            shape = (-1,) + (1,) * (x.ndim - 1)
            cond_sum.index_add_(0, index, cond * weight.view(shape))
            if not skip_uncond:
                uncond_sum.index_add_(0, index, uncond * weight.view(shape))
            weight_sum.index_add_(0, index, weight)
            if self.on_window:
                self.on_window()
        norm = weight_sum.view((-1,) + (1,) * (x.ndim - 1))
        cond = cond_sum / norm
        uncond = cond if skip_uncond else uncond_sum / norm
        scale = cfg_scales(frames, self.cfg_min, self.cfg_max).to(x).view((-1,) + (1,) * (x.ndim - 1))
        return comfy.samplers.cfg_function(self.inner_model, cond, uncond, scale, x, timestep, model_options=model_options,
                                           cond=positive, uncond=negative)
