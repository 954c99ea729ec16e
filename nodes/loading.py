"""Official StableAnimator weight files -> ComfyUI objects (ModelPatchers managed by model management)."""
import logging
import os
from dataclasses import dataclass, field

import torch

import comfy.model_management as mm
import comfy.model_patcher
import comfy.ops
import comfy.sd
import comfy.utils
from comfy import clip_vision

from ..stableanimator_core.checkpoint import build_strict, check_layout, read_state_dict
from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.model.face_encoder import FaceEncoder
from ..stableanimator_core.model.pose_net import PoseNet
from ..stableanimator_core.model.unet_keys import OFFICIAL_RESNET_EPS, resnet_norms_with_official_eps, split_official_unet
from .host_internals import compute_dtype, svd_model, svd_unet_config

log = logging.getLogger("StableAnimator")
DTYPES = {"auto": None, "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16,
          "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)
SVD_VAE_PREFIX = "first_stage_model."
SVD_CLIP_PREFIX = "conditioner.embedders.0.open_clip.model.visual."


@dataclass
class Animator:
    """What StableAnimator adds to SVD: PoseNet, the face encoder and the ID adapter weights.

    id_adapter maps each spatial attn2 path in the UNet (e.g. 'input_blocks.1.1.transformer_blocks.0.attn2')
    to its {'id_to_k': W, 'id_to_v': W}."""
    pose_net: comfy.model_patcher.ModelPatcher
    face_encoder: comfy.model_patcher.ModelPatcher
    id_adapter: dict = field(repr=False)
    dtype: torch.dtype = torch.float32

    @property
    def token_dim(self) -> int:
        return self.face_encoder.model.token_dim


def _patcher(module: torch.nn.Module) -> comfy.model_patcher.ModelPatcher:
    return comfy.model_patcher.ModelPatcher(module, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())


def load_svd_parts(path: str):
    """CLIP vision and temporal VAE from svd_xt.safetensors; its UNet is not built (unet.pth replaces it)."""
    name = os.path.basename(path)
    try:
        sd = comfy.utils.load_torch_file(path, safe_load=True)
    except Exception as e:  # safetensors and torch raise many types for a damaged file
        raise StableAnimatorError(f"{name} could not be read; it is truncated or not a checkpoint ({type(e).__name__}: "
                                  f"{str(e)[:200]}). Download svd_xt.safetensors again into models/checkpoints.") from None
    vae_sd = comfy.utils.state_dict_prefix_replace(sd, {SVD_VAE_PREFIX: ""}, filter_keys=True)
    if "decoder.mid.block_1.mix_factor" not in vae_sd:
        raise StableAnimatorError(f"{name} has no SVD temporal VAE ({SVD_VAE_PREFIX}decoder.mid.block_1.mix_factor missing). "
                                  "Select svd_xt.safetensors (the single-file SVD-xt checkpoint) in models/checkpoints.")
    vae = comfy.sd.VAE(sd=vae_sd)
    clip = None
    if any(k.startswith(SVD_CLIP_PREFIX) for k in sd):
        clip = clip_vision.load_clipvision_from_sd(sd, SVD_CLIP_PREFIX, True)
    else:
        log.warning("%s has no CLIP vision weights; connect a CLIP vision model (clip_vision_h) to the conditioning node", name)
    return vae, clip


def load_unet(path: str, dtype: torch.dtype | None):
    """The official unet.pth (diffusers naming, ID adapter included) as ComfyUI's SVD model.

    Sizes come from the checkpoint itself, so small checkpoints with the official layout load too."""
    name = os.path.basename(path)
    official = read_state_dict(path)
    official_eps_norms = resnet_norms_with_official_eps(official, name)
    official_names = {}
    unet_sd, adapter = split_official_unet(official, name, official_names)
    del official
    if not adapter:
        raise StableAnimatorError(f"{name} has no ID adapter weights (attn2.processor.id_to_k/v): "
                                  "it is a plain SVD UNet, not StableAnimator's Animation/unet.pth")
    config = svd_unet_config(unet_sd)
    if config is None:
        raise StableAnimatorError(f"{name} is not a spatio-temporal (SVD) UNet")
    model, load_device, dtype = svd_model(unet_sd, config, dtype, comfy.utils.calculate_parameters(unet_sd))
    expected = {k[len("diffusion_model."):]: v.shape for k, v in model.state_dict().items() if k.startswith("diffusion_model.")}
    check_layout(unet_sd, expected, name, official_names)
    model.diffusion_model.load_state_dict(unet_sd, strict=True)
    del unet_sd
    for norm in official_eps_norms:   # numerics of the official diffusers blocks, see resnet_norms_with_official_eps
        comfy.utils.get_attr(model.diffusion_model, norm).eps = OFFICIAL_RESNET_EPS
    # The ID adapter is stored like the to_k/to_v it parallels (fp8 too); its layers cast like the UNet's.
    adapter = {path: {k: w.to(dtype) for k, w in kv.items()} for path, kv in adapter.items()}
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=mm.unet_offload_device()), adapter, dtype


def load_module(cls, path: str, dtype: torch.dtype):
    """PoseNet or the face encoder, strictly, as a ModelPatcher in `dtype`."""
    module = build_strict(cls, read_state_dict(path), os.path.basename(path), operations=comfy.ops.manual_cast)
    return _patcher(module.to(dtype).eval())


def load_animator(unet_path, pose_net_path, face_encoder_path, dtype_name="auto"):
    """UNet (ID adapter included) in `dtype_name` as core's UNET loader stores it: with fp8 the weights stay fp8 and
    ComfyUI's ops cast them to the compute dtype layer by layer. PoseNet and the face encoder (about 1 % of the
    weights) stay in the compute dtype under fp8: fp8 would save a few MB and put rounding straight onto conv_in's
    features and the face tokens."""
    model, adapter, dtype = load_unet(unet_path, DTYPES[dtype_name])
    small = compute_dtype(model) if dtype in FP8 else dtype
    animator = Animator(pose_net=load_module(PoseNet, pose_net_path, small),
                        face_encoder=load_module(FaceEncoder, face_encoder_path, small),
                        id_adapter=adapter, dtype=small)
    return model, animator
