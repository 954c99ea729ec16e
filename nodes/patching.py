"""Installing StableAnimator onto a ComfyUI SVD MODEL with ComfyUI's own patch mechanisms.

- ID adapter: each spatial attn2 is replaced (object patch, undone on unpatch) by an IDCrossAttention that
  keeps the block's projections and adds the adapter's id_to_k/id_to_v. The face tokens arrive inside the
  cross-attention context (token 0 CLIP, tokens 1.. face), as in the official pipeline; the temporal blocks
  get the CLIP token only through `time_conditioning`.
- Pose: a DIFFUSION_MODEL wrapper runs PoseNet on the pose frames carried in the conditioning (`sa_pose`,
  only where `sa_pose_mask` is 1, i.e. the cond branch) and an input block patch adds the features to the
  output of conv_in (input block 0), before the first skip connection.
- PoseNet is an additional model of the patched MODEL, so it is loaded, offloaded and cast with the UNet.
- Long videos: the official windows as ComfyUI's context handler (context_windows.py).
- Animator Conditioning carries a ComfyUI hook whose OUTER_SAMPLE wrapper checks, at the start of every
  run under any sampler, that the MODEL went through Apply and that the latent matches the pose frames, so
  neither runs silently wrong (no pose and no ID adapter; pose frames repeated or cut).
"""
import torch

import comfy.hooks
import comfy.patcher_extension

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.model.id_attention import IDCrossAttention
from .context_windows import StableAnimatorWindows, set_windows
from .host_internals import add_model_bytes, cross_attention_parts, guider_run_parts, host_attention

WRAPPER_KEY = "stableanimator"
POSE_FEATURES = "stableanimator_pose_features"


def _linear_like(reference: torch.nn.Module, weight: torch.Tensor) -> torch.nn.Module:
    """A bias-free Linear of the same ComfyUI ops class as `reference`, holding `weight`."""
    out_features, in_features = weight.shape
    layer = type(reference)(in_features, out_features, bias=False, dtype=weight.dtype, device=weight.device)
    layer.weight = torch.nn.Parameter(weight, requires_grad=False)
    return layer


def install_id_adapter(model, id_adapter: dict, strength: float):
    for path, weights in id_adapter.items():
        name = f"diffusion_model.{path}"
        try:
            attn2 = model.get_model_object(name)
        except AttributeError:
            raise StableAnimatorError(f"the MODEL has no {path}: connect the MODEL of the StableAnimator loader") from None
        cross_attention_parts(attn2)
        if hasattr(attn2, "id_to_k"):
            raise StableAnimatorError("StableAnimator is already applied to this MODEL; apply it once")
        if tuple(weights["id_to_k"].shape) != tuple(attn2.to_k.weight.shape):
            raise StableAnimatorError(
                f"ID adapter {path} has shape {tuple(weights['id_to_k'].shape)} but the MODEL's attention has "
                f"{tuple(attn2.to_k.weight.shape)}: the MODEL and the ANIMATOR come from different checkpoints")
        patched = IDCrossAttention(attn2, _linear_like(attn2.to_k, weights["id_to_k"]),
                                   _linear_like(attn2.to_v, weights["id_to_v"]), scale=strength,
                                   attention=host_attention(getattr(attn2, "attn_precision", None)))
        model.add_object_patch(name, patched)


class PoseInjection:
    """input_block_patch: adds the pose features after conv_in."""

    def __call__(self, h, transformer_options):
        features = transformer_options.get(POSE_FEATURES)
        if features is not None and transformer_options.get("block") == ("input", 0):
            h = h + features.to(h)
        return h


def pose_wrapper(pose_net_patcher, strength: float):
    def wrapper(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        pose = kwargs.pop("sa_pose", None)
        mask = kwargs.pop("sa_pose_mask", None)
        if pose is not None and strength != 0:
            net = pose_net_patcher.model
            weight = net.final_proj.weight
            rows = (mask.flatten() > 0).nonzero().flatten() if mask is not None else torch.arange(pose.shape[0])
            features = None
            if len(rows):
                out = net(pose[rows].to(weight.device, weight.dtype)) * strength
                features = x.new_zeros((pose.shape[0], *out.shape[1:]), dtype=out.dtype)
                features[rows] = out
            transformer_options = {**transformer_options, POSE_FEATURES: features}
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
    return wrapper


def check_pose_frames(conds: dict, noise: torch.Tensor) -> None:
    """Every conditioning that carries pose frames must match the latent in frames and size."""
    frames, height, width = noise.shape[0], noise.shape[-2] * 8, noise.shape[-1] * 8
    for cond in (c for branch in conds.values() for c in branch):
        pose = cond.get("model_conds", {}).get("sa_pose")
        if pose is None:
            continue
        got = tuple(pose.cond.shape)
        if got[0] != frames:
            raise StableAnimatorError(
                f"the latent has {frames} frames but the conditioning has {got[0]} pose frames: use the latent "
                "output of the same Animator Conditioning (or give it as many pose frames as the latent has)")
        if got[-2:] != (height, width):
            raise StableAnimatorError(
                f"the latent is {width}x{height} but the pose frames of the conditioning are {got[-1]}x{got[-2]}: "
                "use the latent output of the same Animator Conditioning, or set one size for both")


def check_context_handler(model_options: dict) -> None:
    """A StableAnimator MODEL samples long videos only with Apply Animator's windows. Another node's context
    handler (core Context Windows (Manual), ...) replaced them: its windows do not all hold frame 0, the
    reference frame of the official method, and core's handler cannot step along SVD's frames in 0.3.75
    (set_step compares the per-frame timestep with the schedule)."""
    handler = model_options.get("context_handler")
    if handler is not None and not isinstance(handler, StableAnimatorWindows):
        length = getattr(handler, "context_length", None)
        raise StableAnimatorError(
            f"the MODEL carries another node's context windows ({type(handler).__name__}"
            f"{f', context_length {length}' if length is not None else ''}, e.g. from Context Windows (Manual)), which "
            "replaced Apply Animator's: StableAnimator's windows must all hold frame 0 and blend as the official "
            "method does. Remove that node and set the window and overlap on Apply Animator instead")


def is_applied(model) -> bool:
    return bool(model.get_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY))


def run_checks(executor, noise, *args, **kwargs):
    model_patcher, model_options, conds = guider_run_parts(executor)
    if not is_applied(model_patcher):
        raise StableAnimatorError("this conditioning comes from Animator Conditioning but the MODEL has no "
                                  "StableAnimator patches: connect the MODEL through Apply Animator before the sampler")
    check_context_handler(model_options)
    check_pose_frames(conds, noise)
    return executor(noise, *args, **kwargs)


def run_checks_hook() -> comfy.hooks.HookGroup:
    """One hook group for the positive and the negative of one conditioning: with the same group both still
    run in one batched model call."""
    wrappers = {comfy.patcher_extension.WrappersMP.OUTER_SAMPLE: {WRAPPER_KEY + "_checks": [run_checks]}}
    group = comfy.hooks.HookGroup()
    group.add(comfy.hooks.TransformerOptionsHook(transformers_dict={"wrappers": wrappers}))
    return group


def apply_stableanimator(model, animator, id_strength: float = 1.0, pose_strength: float = 1.0,
                         window: int = 16, overlap: int = 4):
    m = model.clone()
    install_id_adapter(m, animator.id_adapter, id_strength)
    # ComfyUI sizes a MODEL by its module tree without object patches: count the adapter's layers too, so that
    # load_models_gpu frees (or partially loads) for all of it. The layers themselves load, offload and cast with
    # the UNet, since the patched tree holds them while the MODEL is loaded.
    add_model_bytes(m, sum(w.numel() * w.element_size() for kv in animator.id_adapter.values() for w in kv.values()))
    m.set_model_input_block_patch(PoseInjection())
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY,
                           pose_wrapper(animator.pose_net, pose_strength))
    m.set_additional_models(WRAPPER_KEY, [animator.pose_net])
    set_windows(m, window, overlap)
    return m

