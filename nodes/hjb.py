"""StableAnimator HJB face optimisation, carried by the MODEL: everything ComfyUI-specific about it lives here,
the math in stableanimator_core/sampling/hjb.py.

The node returns a clone of the MODEL with
- a post-CFG function that refines the guided x0 prediction at the chosen steps (the step index comes from
  the sampling schedule), so the sampler's next step uses the refined x0 as the official
  EulerDiscreteSchedulerPro does; it therefore works under core KSampler, SamplerCustomAdvanced and the
  pack's sampler;
- the ArcFace network and a differentiable copy of the VAE decoder as additional models, so ComfyUI's model
  management loads, offloads and frees them together with the UNet;
- an OUTER_SAMPLE wrapper that builds each run's state (face boxes for this run's frame count and size,
  the reference identity) when the run starts and drops it when the run ends.

Why a copy of the decoder, and why weights may be re-created: ComfyUI runs nodes under
torch.inference_mode(), so tensors a node creates or moves (ModelPatcher moving weights to the GPU included)
are inference tensors, which autograd refuses to save for backward even inside inference_mode(False).
The copy is a new decoder built from the VAE's weights as normal tensors (host_internals.plain_video_decoder);
at the start of a run, weights that a load under inference mode turned into inference tensors are replaced by normal clones (same device, dtype and values).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

import comfy.model_management as mm
import comfy.model_patcher
import comfy.patcher_extension
from comfy_api.latest import io

from ..stableanimator_core.autograd_tools import Checkpointed, autograd_ready, saved_activation_bytes, set_checkpointing
from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.face.face_crop import boxes_from_masks, boxes_to_pixels
from ..stableanimator_core.sampling.hjb import HJBSettings, decode_windows, reference_identity, refine_x0, schedule_step
from .host_internals import is_euler, plain_video_decoder, run_sigmas, svd_decoder, wrap_decoder_blocks
from .sampling import CATEGORY
from .socket_types import ARCFACE, FACE_EMBED
from .validation import check_inputs, known, node_name, require_finite

log = logging.getLogger("StableAnimator")


# ---- the differentiable decoder copy ---------------------------------------------------------------------

def decoder_copy(vae, dtype: torch.dtype | None = None, checkpoint_blocks: bool = True):
    """A ModelPatcher around a normal-tensor copy of the SVD temporal VAE decoder (mid/up blocks checkpointed),
    on the VAE's offload device; model management moves it to the VAE's device for sampling."""
    decoder, load_device, offload, vae_dtype = svd_decoder(vae)
    net = plain_video_decoder(decoder, offload, dtype or vae_dtype)
    if checkpoint_blocks:   # the blocks the official refined VAE checkpoints
        wrap_decoder_blocks(net, Checkpointed)
    return comfy.model_patcher.ModelPatcher(net, load_device=load_device, offload_device=offload)


def decode_function(patcher):
    """decode(latents_unscaled (N,4,h,w)) -> raw decoder output (N,3,8h,8w), nominally [-1,1], unclamped,
    float32, differentiable. Like vae.decode, the batch is one temporal clip."""
    net = patcher.model
    dtype = next(net.parameters()).dtype

    def decode(latents: torch.Tensor) -> torch.Tensor:
        return net(latents.to(device=patcher.load_device, dtype=dtype)).float()

    decode.module = net
    return decode


# ---- per-run inputs --------------------------------------------------------------------------------------

def reference_box(reference: torch.Tensor, face_embed) -> torch.Tensor:
    """The reference face box (4,) in inclusive pixels of the reference IMAGE (insightface's box, rescaled
    when the embed was taken at another size)."""
    if reference.ndim != 4 or reference.shape[-1] not in (1, 3, 4):
        raise StableAnimatorError(f"reference must be an IMAGE (1,H,W,C), got {tuple(reference.shape)}")
    if len(face_embed) < 1 or not bool(face_embed.found[0]):
        raise StableAnimatorError("no face was found in the reference image, so HJB has no identity to aim at: "
                                  "use a reference photo with a visible face, or remove the HJB node")
    height, width = reference.shape[1:3]
    box = face_embed.boxes[0].detach().float().clone().reshape(1, 4)
    eh, ew = face_embed.image_size
    if (eh, ew) != (height, width):
        if abs(width / height - ew / eh) > 0.02 * ew / eh:
            log.warning("StableAnimator HJB: the reference is %dx%d but Face Embed saw a %dx%d image; its face box is "
                        "stretched to fit, which is right only if the reference was stretched. Link the photo Face "
                        "Embed saw to HJB's reference (a cropped or padded copy moves the face).", width, height, ew, eh)
        box = box * torch.tensor([width / ew, height / eh, width / ew, height / eh])
    return boxes_to_pixels(box, height, width)[0]


def reference_identity_from_inputs(arcface_net: nn.Module, reference: torch.Tensor, face_embed) -> torch.Tensor:
    """e_ref (1,512), as the official script: the native-size reference in [-1,1], cropped to the reference
    face box, bilinear 112x112, through the HJB ArcFace."""
    box = reference_box(reference, face_embed)
    image = reference[:1, ..., :3]
    if image.shape[-1] == 1:
        image = image.expand(-1, -1, -1, 3)
    with torch.inference_mode(False):
        pixels = image.detach().clone().float().movedim(-1, 1) * 2.0 - 1.0
        return reference_identity(arcface_net, pixels, box)


def boxes_for_run(masks: torch.Tensor, frames: int, height: int, width: int) -> torch.Tensor:
    """One face box per frame at the generation size, from the face masks (scaled when their size differs)."""
    if masks.shape[0] < frames:
        raise StableAnimatorError(f"HJB has {masks.shape[0]} face masks for {frames} frames: give one mask per frame "
                                  "(Face Boxes on the same aligned poses as the conditioning)")
    if masks.shape[0] > frames:
        log.info("StableAnimator HJB: %d face masks for %d frames; the first %d are used", masks.shape[0], frames, frames)
    masks = masks[:frames].float()
    if masks.shape[-2:] != (height, width):
        masks = F.interpolate(masks[:, None], size=(height, width), mode="nearest")[:, 0]
    boxes, empty = boxes_from_masks(masks)
    if empty.any():
        log.warning("StableAnimator HJB: no face in the masks of frames %s; the whole frame is used there",
                    empty.nonzero().flatten().tolist())
    return boxes


# ---- the patch -------------------------------------------------------------------------------------------

class HJBFaceOptimisation:
    """Post-CFG function + OUTER_SAMPLE wrapper. `self.run` holds one run's state and is None between runs."""

    def __init__(self, decoder: comfy.model_patcher.ModelPatcher, arcface: comfy.model_patcher.ModelPatcher,
                 reference: torch.Tensor, reference_face, masks: torch.Tensor, settings: HJBSettings):
        self.decoder, self.arcface = decoder, arcface
        self.reference, self.reference_face = reference, reference_face
        self.masks, self.settings = masks, settings
        self.run = None

    def models(self):
        return [self.decoder, self.arcface]

    def __deepcopy__(self, memo):
        """ModelPatcher.clone deep-copies model_options, where this post-CFG function sits, but only shallow-copies
        the wrappers, where wrap_run sits: a node that clones the MODEL after HJB (the Animator Sampler's CFG
        ramp, VideoLinearCFGGuidance, RescaleCFG, ...) would get a copy whose run state wrap_run never sets, and
        HJB would silently do nothing. One object serves every clone, like the wrapper."""
        return self

    def wrap_run(self, executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        """A run's state: face boxes for this run's frames and size; networks and e_ref at the first refined step."""
        frames, height, width = noise.shape[0], noise.shape[-2] * 8, noise.shape[-1] * 8
        if not is_euler(sampler):
            log.warning("StableAnimator HJB: the official method refines Euler steps; with this sampler every model "
                        "evaluation that falls on a step of the schedule is refined")
        self.run = {"boxes": boxes_for_run(self.masks, frames, height, width), "parts": None}
        try:
            return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)
        finally:
            self.run = None

    def _parts(self, latent_shape):
        if self.run["parts"] is None:   # models are loaded by now (prepare_sampling ran)
            arcface = autograd_ready(self.arcface.model)
            decode = decode_function(self.decoder)
            autograd_ready(decode.module)
            self._choose_checkpointing(decode.module, latent_shape)
            self.run["parts"] = decode, arcface, reference_identity_from_inputs(arcface, self.reference, self.reference_face)
        return self.run["parts"]

    def _choose_checkpointing(self, net: nn.Module, latent_shape) -> None:
        """Recompute the decoder's blocks in backward only when keeping their activations would not fit:
        recomputing costs ~1.4x the HJB time (BENCHMARKS.md), keeping costs memory an 8 GB card lacks.
        The largest window of this run is measured with one forward; half the free memory stays in reserve
        for ArcFace, the gradient and the allocator."""
        frames, _, h, w = latent_shape
        windows = decode_windows(self.run["boxes"], frames, (h, w), self.settings)
        win = max(windows, key=lambda v: (v.stop - v.start) * (v.y1 - v.y0) * (v.x1 - v.x0))
        device, dtype = self.decoder.load_device, next(net.parameters()).dtype
        tile = torch.zeros(win.stop - win.start, 4, win.y1 - win.y0, win.x1 - win.x0, device=device, dtype=dtype)
        set_checkpointing(net, False)
        need, free = saved_activation_bytes(net, tile), mm.get_free_memory(device)
        keep = need <= free / 2
        set_checkpointing(net, not keep)
        log.info("StableAnimator HJB: decoder activations %.2f GB per chunk, %.2f GB free on %s: %s", need / 2**30,
                 free / 2**30, device, "kept" if keep else "recomputed in backward (checkpointing)")

    def __call__(self, args):
        denoised = args["denoised"]
        if self.run is None:
            return denoised
        schedule = run_sigmas(args["model_options"])
        step = schedule_step(schedule, args["sigma"])
        if step is None or not self.settings.active(step):
            return denoised
        decode, arcface, reference = self._parts(denoised.shape)
        refined, losses = refine_x0(denoised, step, len(schedule) - 1, decode, arcface, reference, self.run["boxes"],
                                    self.settings, should_stop=mm.processing_interrupted)
        mm.throw_exception_if_processing_interrupted()
        if losses:
            log.info("StableAnimator HJB step %d: identity loss %s", step, " -> ".join(f"{v:.4f}" for v in losses))
        return refined


def apply_hjb(model, vae, arcface, reference, reference_face, face_masks, settings: HJBSettings):
    reference_box(reference, reference_face)   # fail now, not at the first refined step
    hjb = HJBFaceOptimisation(decoder_copy(vae), arcface, reference, reference_face, face_masks, settings)
    m = model.clone()
    key = f"stableanimator_hjb_{id(hjb)}"
    m.set_model_sampler_post_cfg_function(hjb)
    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, key, hjb.wrap_run)
    m.set_additional_models(key, hjb.models())
    return m


REGION_TOOLTIP = ("Decode whole frames as the official code does (far more memory); then Adam also moves every "
                  "background latent. Off (default): only the faces plus `context` cells are decoded and the rest "
                  "of the latent is left as sampled. Measured on small models: off reaches ~90% of the full-frame "
                  "identity (CSIM) gain, and the final latents differ by ~8% (BENCHMARKS.md).")


def refuse_second_hjb(cls, model) -> None:
    """One HJB node per MODEL: the node optimises one identity (one reference, one set of face masks) and two
    in a chain would refine the same faces twice per step towards two targets. Refused here, before sampling."""
    if any(isinstance(f, HJBFaceOptimisation) for f in model.model_options.get("sampler_post_cfg_function", [])):
        raise StableAnimatorError(
            f"{node_name(cls)}: the MODEL already went through another HJB Face Optimisation node, and one MODEL "
            "takes one (HJB refines one identity per step). Remove one of the two, or connect this node's model "
            "input to Apply Animator's MODEL instead of the other HJB node's")


class StableAnimatorHJB(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorHJB",
            display_name="HJB Face Optimisation",
            category=CATEGORY,
            description="Adds HJB face optimisation to the MODEL: at the chosen steps the guided x0 prediction is "
                        "refined with a few Adam steps on 1 - cos(ArcFace(face crop of the decoded frames), reference "
                        "identity), as the official HJB inference does, before the sampler takes its step. Works "
                        "with the Animator Sampler and core KSampler (Euler is the official sampler). Only the "
                        "face regions are decoded (with context) in chunks; the decoder's activations are recomputed in "
                        "backward when keeping them would not fit in free memory, so it fits 24 GB at 16 frames "
                        "512x512; full_frame reproduces the official decode.",
            inputs=[
                io.Model.Input("model", tooltip="MODEL from Apply Animator (one HJB node per MODEL: not from another HJB node)."),
                io.Vae.Input("vae", tooltip="SVD-xt's VAE: gradients flow through its decoder."),
                ARCFACE.Input("arcface", tooltip="Load ArcFace (HJB) (glintr100_torch.pth or antelopev2's glintr100.onnx)."),
                io.Image.Input("reference", tooltip="The reference photo as loaded: the image Face Embed (reference_face) saw, "
                               "since its face box is read in that image. Not the resized or cropped copy."),
                FACE_EMBED.Input("reference_face", tooltip="Face Embed of the reference: its face box gives the reference crop."),
                io.Mask.Input("face_masks", tooltip="One face mask per frame (Face Boxes); scaled to the "
                                                    "generation size when they differ."),
                io.Int.Input("start_step", default=0, min=0, max=1000, tooltip="First refined step. Official: 0."),
                io.Int.Input("end_step", default=20, min=0, max=1000, tooltip="Last refined step (inclusive). Official: 20 of 25."),
                io.Int.Input("iterations", default=3, min=0, max=50, tooltip="Adam iterations per refined step. Official: 3."),
                io.Float.Input("learning_rate", default=0.1, min=0.0, max=10.0, step=0.005,
                               tooltip="Adam learning rate at step 0; step i uses lr * (1 - i/steps). Official: 0.1."),
                io.Int.Input("context", default=8, min=0, max=128,
                             tooltip="Latent cells (8 px each) decoded around each face for context."),
                io.Boolean.Input("full_frame", default=False, tooltip=REGION_TOOLTIP),
            ],
            outputs=[io.Model.Output(display_name="MODEL", tooltip="The MODEL with HJB face optimisation; connect it to "
                                                                   "the Animator Sampler or a KSampler.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, rules=[
            lambda v: f"end_step ({v['end_step']}) is before start_step ({v['start_step']})"
            if known(v, "start_step", "end_step") and v["end_step"] < v["start_step"] else None])

    @classmethod
    def execute(cls, model, vae, arcface, reference, reference_face, face_masks, start_step, end_step, iterations,
                learning_rate, context, full_frame) -> io.NodeOutput:
        refuse_second_hjb(cls, model)
        require_finite(cls, "reference", reference)
        require_finite(cls, "face_masks", face_masks)
        settings = HJBSettings(start=start_step, end=end_step, iterations=iterations, lr=learning_rate,
                               context=context, full_frame=full_frame)
        return io.NodeOutput(apply_hjb(model, vae, arcface, reference, reference_face, face_masks, settings))


NODES = [StableAnimatorHJB]
