"""ComfyUI glue for the HJB face optimisation (no node classes): a differentiable copy of the SVD temporal
VAE decoder, the ArcFace network ready for autograd, and the reference identity vector e_ref.

Why copies: ComfyUI runs every node under torch.inference_mode(), so weights loaded or moved by a node
(including ModelPatcher moving them to the GPU) are inference tensors, and autograd refuses to save them
for backward even inside inference_mode(False). The decoder copy is built once per VAE object with
normal tensors; the ArcFace module's weights are re-created in place when a move made them inference
tensors.
"""
from __future__ import annotations

import copy
import weakref

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.face.face_crop import boxes_to_pixels
from ..stableanimator_core.sampling.hjb import reference_identity

_DECODERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class _Checkpointed(nn.Module):
    """Runs the wrapped block under torch.utils.checkpoint when its input needs a gradient: only the
    block's inputs are kept, its activations are recomputed during backward."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return checkpoint(self.inner, *args, use_reentrant=False, **kwargs)
        return self.inner(*args, **kwargs)


def _wrap_blocks(decoder: nn.Module) -> None:
    """Checkpoint the mid and up blocks (the official refined VAE checkpoints the same blocks)."""
    for name in ("block_1", "attn_1", "block_2"):
        if hasattr(decoder.mid, name):
            setattr(decoder.mid, name, _Checkpointed(getattr(decoder.mid, name)))
    for level in decoder.up:
        for i in range(len(level.block)):
            level.block[i] = _Checkpointed(level.block[i])
        for i in range(len(level.attn)):
            level.attn[i] = _Checkpointed(level.attn[i])
        if hasattr(level, "upsample"):
            level.upsample = _Checkpointed(level.upsample)


def _normal_copy(module: nn.Module, device, dtype) -> nn.Module:
    """deepcopy with every parameter and buffer re-created as a normal tensor on device (float ones in dtype)."""
    memo = {}
    with torch.inference_mode(False):
        for t in list(module.parameters()) + list(module.buffers()):
            data = t.detach().to(device=device, dtype=dtype if t.is_floating_point() else t.dtype, copy=True)
            memo[id(t)] = nn.Parameter(data, requires_grad=False) if isinstance(t, nn.Parameter) else data
        out = copy.deepcopy(module, memo)
    for m in out.modules():  # plain forward: weights already sit on the right device and dtype
        if hasattr(m, "comfy_cast_weights"):
            m.comfy_cast_weights = False
            m.weight_function = []
            m.bias_function = []
    return out.eval().requires_grad_(False)


def differentiable_decoder(vae, dtype: torch.dtype | None = None, checkpoint_blocks: bool = True):
    """ComfyUI VAE (SVD temporal VAE) -> decode(latents_unscaled (N,4,h,w)) -> pixels (N,3,8h,8w).

    Decodes exactly like `vae.decode` does (first_stage_model.decode(z): the temporal decoder treats the
    whole batch as one clip) but keeps the autograd graph and returns the raw decoder output, nominally
    [-1,1] and not clamped (ComfyUI's IMAGE is clamp((x+1)/2, 0, 1)). The copy lives on vae.device in
    vae.vae_dtype (or `dtype`), is built once per VAE object and dtype, and its weights never need grad.
    `checkpoint_blocks` recomputes each mid/up block in backward instead of keeping its activations.
    """
    from comfy.ldm.modules.temporal_ae import VideoDecoder

    first_stage = getattr(vae, "first_stage_model", None)
    decoder = getattr(first_stage, "decoder", None)
    if not isinstance(decoder, VideoDecoder):
        raise StableAnimatorError("HJB face optimisation needs SVD's temporal VAE (the VAE of svd_xt.safetensors); "
                                  f"this VAE's decoder is {type(decoder).__name__}. Connect the VAE from the SVD "
                                  "checkpoint loader.")
    dtype = dtype or vae.vae_dtype
    device = torch.device(vae.device)
    key = (str(dtype), bool(checkpoint_blocks))
    cache = _DECODERS.setdefault(vae, {})
    if key in cache:
        return cache[key]
    net = _normal_copy(decoder, device, dtype)
    if checkpoint_blocks:
        _wrap_blocks(net)

    def decode(latents: torch.Tensor) -> torch.Tensor:
        return net(latents.to(device=device, dtype=dtype)).float()

    decode.module = net
    decode.device = device
    decode.dtype = dtype
    cache[key] = decode
    return decode


def differentiable_arcface(arcface_patcher) -> nn.Module:
    """Load the ArcFace ModelPatcher (StableAnimator ArcFace Loader) on the compute device and return its
    IResNet with normal (non-inference) weights, eval mode, requires_grad False."""
    import comfy.model_management as mm

    with torch.inference_mode(False):
        mm.load_model_gpu(arcface_patcher)
        net = arcface_patcher.model
        for m in net.modules():
            for name, p in list(m.named_parameters(recurse=False)):
                if p.is_inference():
                    setattr(m, name, nn.Parameter(p.detach().clone(), requires_grad=False))
            for name, b in list(m.named_buffers(recurse=False)):
                if b is not None and b.is_inference():
                    setattr(m, name, b.detach().clone())
    return net.eval().requires_grad_(False)


def reference_identity_from_inputs(arcface_patcher, reference: torch.Tensor, face_embed) -> torch.Tensor:
    """e_ref (1,512) from the reference IMAGE (1,H,W,C) in [0,1] and its StableAnimator Face Embed.

    As the official script: the native-size reference in [-1,1], cropped to the reference face box
    (face_embed.boxes[0], insightface's box, rescaled if the embed was taken at another size), bilinear
    112x112, through the HJB ArcFace."""
    if reference.ndim != 4 or reference.shape[-1] not in (1, 3, 4):
        raise StableAnimatorError(f"reference must be an IMAGE (1,H,W,C), got {tuple(reference.shape)}")
    if len(face_embed) < 1 or not bool(face_embed.found[0]):
        raise StableAnimatorError("no face was found in the reference image, so HJB has no identity to aim at: "
                                  "use a reference photo with a visible face, or turn HJB off")
    image = reference[:1, ..., :3]
    if image.shape[-1] == 1:
        image = image.expand(-1, -1, -1, 3)
    height, width = image.shape[1:3]
    box = face_embed.boxes[0].detach().float().clone().reshape(1, 4)
    eh, ew = face_embed.image_size
    if (eh, ew) != (height, width):
        box = box * torch.tensor([width / ew, height / eh, width / ew, height / eh])
    box = boxes_to_pixels(box, height, width)[0]
    net = differentiable_arcface(arcface_patcher)
    with torch.inference_mode(False):
        pixels = image.detach().clone().float().movedim(-1, 1) * 2.0 - 1.0
        return reference_identity(net, pixels, box)
