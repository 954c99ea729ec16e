"""The ComfyUI internals the pack depends on where ComfyUI offers no public seam, gathered here, one section per
concern. Written against ComfyUI 0.3.75 (the host the tests run); tests/test_host_internals.py checks every one
of them on the running host and fails loudly, naming the internal, when one changes.

Everything else in nodes/ uses ComfyUI's public seams: ModelPatcher (clone, object/block patches, wrappers,
additional models, model_options' cfg and post-CFG functions), comfy.sample / comfy.samplers, hooks,
model_management, io.ComfyNode.
"""
from __future__ import annotations

import functools

import torch

import comfy.conds
import comfy.context_windows as cw

from ..stableanimator_core.errors import StableAnimatorError

COMFYUI_VERSION = "0.3.75"   # the version every internal below was read from


def _changed(what: str, error: Exception | None = None) -> StableAnimatorError:
    detail = f" ({type(error).__name__}: {error})" if error is not None else ""
    return StableAnimatorError(f"this ComfyUI changed an internal StableAnimator relies on: {what}{detail}. The pack was "
                               f"written against ComfyUI {COMFYUI_VERSION}; please report this with your ComfyUI version")


# ---- 1. SVD's temporal VAE decoder (HJB differentiates through a copy of it) --------------------------------
# Internal: comfy.sd.VAE keeps the network in `first_stage_model` (its `decoder` a temporal_ae.VideoDecoder),
# its devices in `device` / `patcher.offload_device`, its dtype in `vae_dtype`. The copy is a fresh VideoDecoder
# built from the config read off the decoder (attributes VideoDecoder/Decoder/ResnetBlock/AE3DConv keep) and
# loaded strictly from its weights, so no runtime state of comfy.ops layers (cast flags, low-VRAM functions,
# quantised or pinned weights) is carried over.

def svd_decoder(vae):
    """(decoder module, load device, offload device, dtype) of a ComfyUI VAE holding SVD's temporal decoder."""
    from comfy.ldm.modules.temporal_ae import VideoDecoder
    decoder = getattr(getattr(vae, "first_stage_model", None), "decoder", None)
    if not isinstance(decoder, VideoDecoder):
        raise StableAnimatorError("HJB face optimisation needs SVD's temporal VAE (the VAE of svd_xt.safetensors); "
                                  f"this VAE's decoder is {type(decoder).__name__}. Connect the VAE from the "
                                  "Load Animator Models.")
    try:
        return decoder, torch.device(vae.device), vae.patcher.offload_device, vae.vae_dtype
    except AttributeError as e:
        raise _changed("comfy.sd.VAE's device / patcher.offload_device / vae_dtype", e) from None


def video_decoder_config(decoder) -> dict:
    """The constructor arguments of a temporal_ae.VideoDecoder, read from the built network."""
    try:
        ch = decoder.ch
        ch_mult = [level.block[0].out_channels // ch for level in decoder.up]
        if any(len(level.attn) for level in decoder.up):
            raise _changed("VideoDecoder with attention in its up blocks (SVD's has none)")
        return dict(ch=ch, out_ch=decoder.conv_out.out_channels, ch_mult=ch_mult, num_res_blocks=decoder.num_res_blocks,
                    attn_resolutions=[], dropout=0.0, in_channels=decoder.in_channels, resolution=decoder.resolution,
                    z_channels=decoder.conv_in.in_channels, double_z=True, give_pre_end=decoder.give_pre_end,
                    tanh_out=decoder.tanh_out, video_kernel_size=list(decoder.conv_out.time_mix_conv.kernel_size),
                    alpha=0.0, merge_strategy=decoder.merge_strategy, time_mode=decoder.time_mode)
    except AttributeError as e:
        raise _changed("the attributes of comfy.ldm.modules.temporal_ae.VideoDecoder", e) from None


def plain_video_decoder(decoder, device, dtype) -> torch.nn.Module:
    """A new VideoDecoder with the same architecture holding normal-tensor copies of `decoder`'s weights (float
    ones in `dtype`) on `device`; eval mode, no gradients on its weights."""
    from comfy.ldm.modules.temporal_ae import VideoDecoder
    with torch.inference_mode(False):
        with torch.device("meta"):
            net = VideoDecoder(**video_decoder_config(decoder))
        weights = {name: t.detach().to(device=device, dtype=dtype if t.is_floating_point() else t.dtype, copy=True)
                   for name, t in decoder.state_dict().items()}
        try:
            net.load_state_dict(weights, strict=True, assign=True)
        except RuntimeError as e:
            raise _changed("VideoDecoder rebuilt from its attributes does not hold the VAE's weights", e) from None
    return net.eval().requires_grad_(False)


def wrap_decoder_blocks(decoder, wrap) -> None:
    """Replace the decoder's mid blocks and every up-level block, attention and upsampler by wrap(block)."""
    try:
        for name in ("block_1", "attn_1", "block_2"):
            setattr(decoder.mid, name, wrap(getattr(decoder.mid, name)))
        for level in decoder.up:
            for i in range(len(level.block)):
                level.block[i] = wrap(level.block[i])
            for i in range(len(level.attn)):
                level.attn[i] = wrap(level.attn[i])
            if hasattr(level, "upsample"):
                level.upsample = wrap(level.upsample)
    except AttributeError as e:
        raise _changed("the mid / up block layout of temporal_ae.VideoDecoder", e) from None


# ---- 1b. Decoding one clip of frames together (Decode Video's spatial tiles) ---------------------------------
# Internal: comfy.sd.VAE's `first_stage_model.decode` decodes a whole batch in one call (the temporal decoder mixes
# the batch's frames), with the input on `device` in `vae_dtype` and the result moved to `output_device`;
# `process_output` maps [-1, 1] to [0, 1]; `memory_used_decode(shape, dtype)` is ComfyUI's estimate per frame;
# `patcher` and `disable_offload` are what VAE.decode itself hands to load_models_gpu.

def vae_clip_decoder(vae):
    """A namespace for a ComfyUI VAE: decode (F,4,h,w) -> (F,3,8h,8w) in [-1, 1] with all F frames in one call;
    to_images maps that to (F,8h,8w,3) in [0, 1] as VAE.decode returns it; memory_per_frame(shape) is ComfyUI's
    estimate; load(bytes) loads the VAE as VAE.decode does; output_device is where decoded pixels go."""
    from types import SimpleNamespace
    import comfy.model_management as mm
    try:
        network, device, dtype, output_device = vae.first_stage_model, vae.device, vae.vae_dtype, vae.output_device
        process_output, estimate, patcher, no_offload = (vae.process_output, vae.memory_used_decode, vae.patcher,
                                                         vae.disable_offload)
    except AttributeError as e:
        raise _changed("comfy.sd.VAE's first_stage_model / device / vae_dtype / output_device / process_output / "
                       "memory_used_decode / patcher / disable_offload", e) from None

    def decode(latent):
        return network.decode(latent.to(device, dtype)).to(output_device).float()

    def to_images(pixels):
        return process_output(pixels).movedim(1, -1)

    def load(memory):
        mm.load_models_gpu([patcher], memory_required=memory, force_full_load=no_offload)

    return SimpleNamespace(decode=decode, to_images=to_images, memory_per_frame=lambda shape: estimate(shape, dtype),
                           load=load, output_device=output_device)


# ---- 2. Context windows (the official windows are an IndexListContextHandler) -------------------------------
# 0.3.75 has two bugs along frames (dim 0) that newer ComfyUI fixes: set_step compares the whole per-frame
# timestep with the schedule (a shape error for a video) and raises between schedule points (dpm_2, heun); and
# get_resized_cond slices per-frame model_conds only for dim >= 1, so dim-0 ones reach every window whole.
# The probes below test core's behaviour (not a version), so a fixed host runs core's own code.
# Internals: the handler's `_step`, CONDRegular._copy_with, the IndexListContextWindow constructor.

def _probe_handler() -> cw.IndexListContextHandler:
    none = cw.ContextSchedule("stableanimator_probe", lambda *a, **k: [])
    return cw.IndexListContextHandler(none, cw.ContextFuseMethod("stableanimator_probe", lambda *a, **k: []),
                                      context_length=2, context_overlap=0, dim=0)


def _probe_window(index_list, frames):
    try:
        return cw.IndexListContextWindow(index_list, dim=0, total_frames=frames)   # newer ComfyUI
    except TypeError:
        return cw.IndexListContextWindow(index_list, dim=0)                        # 0.3.75


def core_set_step_handles_video() -> bool:
    """True where core's set_step finds a per-frame timestep's step and keeps it between schedule points."""
    return _set_step_works(cw.IndexListContextHandler.set_step)


@functools.lru_cache(maxsize=4)
def _set_step_works(set_step) -> bool:
    handler = _probe_handler()
    options = {"transformer_options": {"sample_sigmas": torch.tensor([3.0, 2.0, 1.0, 0.0])}}
    try:
        set_step(handler, torch.full((3,), 2.0), options)
        found = handler._step
        set_step(handler, torch.full((3,), 1.5), options)   # a second-order sampler's midpoint
    except Exception:
        return False
    return found == 1 and handler._step == 1


def core_slices_frame_conds() -> bool:
    """True where core's get_resized_cond slices model_conds whose first dimension is the frame count."""
    return _slices_frame_conds(cw.IndexListContextHandler.get_resized_cond)


@functools.lru_cache(maxsize=4)
def _slices_frame_conds(get_resized_cond) -> bool:
    frames = torch.arange(3.0).reshape(3, 1)
    cond = [{"model_conds": {"stableanimator_probe": comfy.conds.CONDRegular(frames)}}]
    try:
        out = get_resized_cond(_probe_handler(), cond, torch.zeros(3, 1), _probe_window([0, 2], 3))
        got = out[0]["model_conds"]["stableanimator_probe"].cond
    except Exception:
        return False
    return tuple(got.shape) == (2, 1) and got.flatten().tolist() == [0.0, 2.0]


def record_step(handler: cw.IndexListContextHandler, step: int) -> None:
    """What core's set_step records (schedules that depend on the step read `_step`)."""
    handler._step = int(step)


def cond_with(cond, tensor: torch.Tensor):
    """A copy of a comfy.conds CONDRegular-like object holding `tensor` (core's own resize uses the same method)."""
    try:
        return cond._copy_with(tensor)
    except AttributeError as e:
        raise _changed("comfy.conds.CONDRegular._copy_with", e) from None


# ---- 3. The sampling run seen from patches and wrappers (HJB, the run checks) --------------------------------
# Internal: the executor's `class_obj` is the CFGGuider, whose `model_patcher` and `conds` (the conditioning
# lists by name, already converted) are attributes without an accessor; the run's sigmas are
# transformer_options["sample_sigmas"]; a KSAMPLER's k-diffusion function is `sampler_function`.

def run_sigmas(model_options: dict):
    """The sigmas of the running sampler (set by CFGGuider for the run), or None outside a run."""
    return model_options.get("transformer_options", {}).get("sample_sigmas")


def is_euler(sampler) -> bool:
    """Whether a sampler object is core's plain Euler (KSAMPLER around k_diffusion's sample_euler)."""
    return getattr(getattr(sampler, "sampler_function", None), "__name__", "") == "sample_euler"


def guider_run_parts(executor):
    """(ModelPatcher, model_options, {"positive": [...], "negative": [...]}) of the guider an OUTER_SAMPLE
    wrapper runs in; model_options are the ones this run samples with (its context handler included)."""
    guider = getattr(executor, "class_obj", None)
    try:
        return guider.model_patcher, guider.model_options, guider.conds
    except AttributeError as e:
        raise _changed("the OUTER_SAMPLE executor's class_obj (CFGGuider) model_patcher / model_options / conds",
                       e) from None


# ---- 4. ComfyUI's SVD model built from a UNet state dict (the loader replaces every UNet weight) -------------
# Internal: comfy.model_detection.detect_unet_config reads the UNet's shapes off its keys (ComfyUI layout);
# comfy.supported_models.SVD_img2vid(config) is the model config core gives svd_xt; model_management's
# unet_inital_load_device (sic) picks where the weights are placed first.

def svd_unet_config(unet_sd: dict) -> dict | None:
    """The UNet config ComfyUI detects from a ComfyUI-layout state dict, or None when it is not a
    spatio-temporal (SVD) UNet."""
    import comfy.model_detection
    try:
        config = comfy.model_detection.detect_unet_config(unet_sd, "")
    except (AttributeError, TypeError) as e:
        raise _changed("comfy.model_detection.detect_unet_config(state_dict, prefix)", e) from None
    return config if config and config.get("use_temporal_attention") else None


def svd_model(unet_sd: dict, config: dict, dtype, params: int):
    """(ComfyUI's SVD_img2vid model with an empty UNet of `config`, load device, inference dtype); dtype None
    lets ComfyUI choose as its own loaders do."""
    import comfy.model_management as mm
    import comfy.supported_models
    import comfy.utils
    try:
        model_config = comfy.supported_models.SVD_img2vid(config)   # built from the detected shapes, not by size
        load_device = mm.get_torch_device()
        if dtype is None:
            dtype = mm.unet_dtype(model_params=params, supported_dtypes=model_config.supported_inference_dtypes,
                                  weight_dtype=comfy.utils.weight_dtype(unet_sd))
        model_config.set_inference_dtype(dtype, mm.unet_manual_cast(dtype, load_device,
                                                                    model_config.supported_inference_dtypes))
        initial = mm.unet_inital_load_device(params, dtype)
    except (AttributeError, TypeError) as e:
        raise _changed("comfy.supported_models.SVD_img2vid / model_management.unet_inital_load_device", e) from None
    return model_config.get_model(unet_sd, "", device=initial), load_device, dtype


# ---- 5. The attention of core's CrossAttention (the ID adapter extends attn2) --------------------------------
# Internal: CrossAttention keeps to_q / to_k / to_v (Linear), to_out (Sequential: Linear, Dropout), heads and
# attn_precision; the attention function is comfy.ldm.modules.attention.optimized_attention, which start flags
# and packs replace, so it is looked up at call time as core's CrossAttention does.

CROSS_ATTENTION_PARTS = ("to_q", "to_k", "to_v", "to_out", "heads")


def cross_attention_parts(attn2) -> None:
    """Refuses an attention module that no longer has the parts the ID adapter reuses."""
    missing = [name for name in CROSS_ATTENTION_PARTS if not hasattr(attn2, name)]
    if missing:
        raise _changed(f"CrossAttention ({type(attn2).__name__}) has no {', '.join(missing)}")


def host_attention(attn_precision):
    """ComfyUI's attention, looked up at call time: the backend ComfyUI was started with (sage, flash, xformers,
    PyTorch), a pack that swaps it, and transformer_options' optimized_attention_override."""
    import comfy.ldm.modules.attention as comfy_attention

    def attention(q, k, v, heads, transformer_options):
        return comfy_attention.optimized_attention(q, k, v, heads, attn_precision=attn_precision,
                                                   transformer_options=transformer_options)
    return attention


# ---- 6. What ComfyUI reads off a loaded MODEL: its size and the dtype it computes in -------------------------
# Internal: ModelPatcher.model_size() caches the module tree's bytes in `size` and returns that cache afterwards
# (load_models_gpu frees and partially loads by it); BaseModel keeps the cast dtype of fp8 storage in
# `manual_cast_dtype` (None when the weights are computed in their own dtype).

def add_model_bytes(patcher, extra: int) -> None:
    """Makes ComfyUI's memory estimate of `patcher` count `extra` bytes more (layers it holds outside its module
    tree, such as object patches)."""
    want = patcher.model_size() + extra
    patcher.size = want
    if patcher.model_size() != want:
        raise _changed("ModelPatcher.model_size() no longer returns its cached `size`")


def compute_dtype(patcher) -> torch.dtype:
    """The dtype ComfyUI computes a MODEL's UNet in: its storage dtype, or the cast dtype when it stores fp8 (or
    a dtype the device cannot compute in)."""
    try:
        return patcher.model.manual_cast_dtype or patcher.model.get_dtype()
    except AttributeError as e:
        raise _changed("BaseModel.manual_cast_dtype / get_dtype()", e) from None
