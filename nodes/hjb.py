"""StableAnimator HJB: settings and inputs of the HJB face optimisation, handed to the sampler."""
import logging

import torch
import torch.nn.functional as F

from comfy_api.latest import io

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.face.face_crop import boxes_from_masks
from ..stableanimator_core.sampling.hjb import HJBSettings, refine_x0
from .hjb_support import differentiable_arcface, differentiable_decoder, reference_identity_from_inputs
from .sampling import CATEGORY
from .socket_types import ARCFACE, FACE_EMBED, HJB

log = logging.getLogger("StableAnimator")


class HJBFaceOptimisation:
    """What the sampler calls at each step: active(step) and refine(x0, step, steps, should_stop)."""

    def __init__(self, vae, arcface_patcher, reference, reference_face, masks, settings: HJBSettings):
        self.vae, self.arcface_patcher = vae, arcface_patcher
        self.reference, self.reference_face = reference, reference_face
        self.masks, self.settings = masks, settings
        self.boxes = None
        self._parts = None

    def active(self, step: int) -> bool:
        return self.settings.active(step)

    def check_frames(self, frames: int, height: int, width: int) -> None:
        """Face boxes at the generation size, one per frame; masks of another size are scaled."""
        if self.masks.shape[0] < frames:
            raise StableAnimatorError(f"HJB has {self.masks.shape[0]} face masks for {frames} frames: give one mask per "
                                      "frame (StableAnimator Face Boxes on the aligned poses makes them)")
        masks = self.masks[:frames].float()
        if masks.shape[-2:] != (height, width):
            masks = F.interpolate(masks[:, None], size=(height, width), mode="nearest")[:, 0]
        self.boxes, empty = boxes_from_masks(masks)
        if empty.any():
            log.warning("StableAnimator HJB: no face in the masks of frames %s; the whole frame is used there",
                        empty.nonzero().flatten().tolist())

    def _prepare(self):
        if self._parts is None:   # built at the first refined step, on the devices ComfyUI picked then
            arcface = differentiable_arcface(self.arcface_patcher)
            reference = reference_identity_from_inputs(self.arcface_patcher, self.reference, self.reference_face)
            self._parts = differentiable_decoder(self.vae), arcface, reference
        return self._parts

    def refine(self, x0: torch.Tensor, step: int, steps: int, should_stop=None) -> torch.Tensor:
        if self.boxes is None:
            self.check_frames(x0.shape[0], x0.shape[-2] * 8, x0.shape[-1] * 8)
        decode, arcface, reference = self._prepare()
        refined, losses = refine_x0(x0, step, steps, decode, arcface, reference, self.boxes, self.settings,
                                    should_stop=should_stop)
        if losses:
            log.info("StableAnimator HJB step %d: identity loss %s", step, " -> ".join(f"{v:.4f}" for v in losses))
        return refined


class StableAnimatorHJB(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorHJB",
            display_name="HJB Face Optimisation",
            category=CATEGORY,
            description="At the chosen steps, refines the sampler's x0 prediction with a few Adam steps on "
                        "1 - cos(ArcFace(face crop of the decoded frames), reference identity), as the official "
                        "HJB inference does. Only the face regions are decoded (with context), chunked and "
                        "checkpointed, so it fits 24 GB at 16 frames 512x512; full_frame reproduces the official decode.",
            inputs=[
                io.Vae.Input("vae", tooltip="SVD-xt's VAE: gradients flow through its decoder."),
                ARCFACE.Input("arcface", tooltip="StableAnimator ArcFace Loader (glintr100_torch.pth or antelopev2's glintr100.onnx)."),
                io.Image.Input("reference", tooltip="The reference photo (the same as for conditioning)."),
                FACE_EMBED.Input("reference_face", tooltip="Face Embed of the reference: its face box gives the reference crop."),
                io.Mask.Input("face_masks", tooltip="One face mask per frame at the generation size (StableAnimator Face Boxes)."),
                io.Int.Input("start_step", default=0, min=0, max=1000, tooltip="First refined step. Official: 0."),
                io.Int.Input("end_step", default=20, min=0, max=1000, tooltip="Last refined step (inclusive). Official: 20 of 25."),
                io.Int.Input("iterations", default=3, min=0, max=50, tooltip="Adam iterations per refined step. Official: 3."),
                io.Float.Input("learning_rate", default=0.1, min=0.0, max=10.0, step=0.005,
                               tooltip="Adam learning rate at step 0; step i uses lr * (1 - i/steps). Official: 0.1."),
                io.Int.Input("context", default=8, min=0, max=128,
                             tooltip="Latent cells (8 px each) decoded around each face for context."),
                io.Boolean.Input("full_frame", default=False,
                                 tooltip="Decode whole frames as the official code does (needs far more memory)."),
            ],
            outputs=[HJB.Output(display_name="HJB", tooltip="Connect to the hjb input of the StableAnimator sampler.")],
        )

    @classmethod
    def validate_inputs(cls, start_step, end_step):
        if end_step < start_step:
            return f"end_step ({end_step}) is before start_step ({start_step})"
        return True

    @classmethod
    def execute(cls, vae, arcface, reference, reference_face, face_masks, start_step, end_step, iterations,
                learning_rate, context, full_frame) -> io.NodeOutput:
        settings = HJBSettings(start=start_step, end=end_step, iterations=iterations, lr=learning_rate,
                               context=context, full_frame=full_frame)
        return io.NodeOutput(HJBFaceOptimisation(vae, arcface, reference, reference_face, face_masks, settings))


NODES = [StableAnimatorHJB]
