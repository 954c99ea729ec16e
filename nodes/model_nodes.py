"""Loader and Apply nodes for StableAnimator's model."""

import folder_paths
from comfy_api.latest import io

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.sampling.windows import window_problem
from . import loading, model_folders
from .model_folders import full_path
from .patching import apply_stableanimator
from .socket_types import ANIMATOR
from .validation import check_inputs, node_name

CATEGORY = "StableAnimator"


# What the file names of models/stableanimator say they hold (official names and common renamings).
STABLEANIMATOR_KINDS = {
    "unet": ("unet",),
    "pose_net": ("pose",),
    "face_encoder": ("face_encoder", "face-encoder", "faceencoder"),
    "arcface": ("glint", "arcface", "iresnet"),   # the HJB ArcFace: never a choice here
}
SVD_HINTS = ("svd", "stable-video", "stable_video", "img2vid")


def _svd_choices():
    """SVD checkpoints by name; every checkpoint when none is named so (a renamed svd_xt stays pickable)."""
    names = folder_paths.get_filename_list("checkpoints")
    svd = [n for n in names if any(h in n.lower() for h in SVD_HINTS)]
    options = svd or names
    return options, (options[0] if options else None)


def _choices(kind: str):
    names = model_folders.files_of_kind(folder_paths.get_filename_list("stableanimator"), kind, STABLEANIMATOR_KINDS)
    return names, (names[0] if names else None)


class StableAnimatorModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        svd, svd_default = _svd_choices()
        unet, unet_default = _choices("unet")
        pose_net, pose_net_default = _choices("pose_net")
        face_encoder, face_encoder_default = _choices("face_encoder")
        return io.Schema(
            node_id="StableAnimatorModelLoader",
            display_name="Load Animator Models",
            category=model_folders.LOADER_CATEGORY,
            description="Loads SVD-xt's CLIP vision and temporal VAE from svd_xt.safetensors and StableAnimator's "
                        "fine-tuned UNet (unet.pth, which replaces every UNet weight), PoseNet and face encoder from "
                        "models/stableanimator. .pth files are read with weights_only; .safetensors work too.",
            inputs=[
                io.Combo.Input("svd_checkpoint", options=svd, default=svd_default,
                               tooltip="svd_xt.safetensors in models/checkpoints (SVD-xt single file: CLIP vision + temporal VAE)."),
                io.Combo.Input("unet", options=unet, default=unet_default,
                               tooltip="StableAnimator's Animation/unet.pth (or a .safetensors conversion) in models/stableanimator."),
                io.Combo.Input("pose_net", options=pose_net, default=pose_net_default,
                               tooltip="Animation/pose_net.pth in models/stableanimator."),
                io.Combo.Input("face_encoder", options=face_encoder, default=face_encoder_default,
                               tooltip="Animation/face_encoder.pth in models/stableanimator."),
                io.Combo.Input("dtype", options=list(loading.DTYPES), default="auto",
                               tooltip="Weight precision. auto picks what ComfyUI prefers on this device "
                                       "(fp16/bf16 on GPUs, fp32 on the CPU). fp8_e4m3fn / fp8_e5m2 store the UNet "
                                       "and ID adapter in 8 bits (half of fp16's memory) and compute in fp16/bf16 "
                                       "(fp32 on the CPU), as core's Load Diffusion Model does; PoseNet and the face "
                                       "encoder stay in the compute precision."),
            ],
            outputs=[
                io.Model.Output(display_name="MODEL", tooltip="ComfyUI's SVD model with StableAnimator's UNet weights; "
                                                              "connect it to Apply Animator."),
                io.ClipVision.Output(display_name="CLIP_VISION", tooltip="SVD-xt's CLIP image encoder."),
                io.Vae.Output(display_name="VAE", tooltip="SVD-xt's temporal VAE."),
                ANIMATOR.Output(display_name="ANIMATOR", tooltip="PoseNet, face encoder and ID adapter weights."),
            ],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, weights={"svd_checkpoint": "checkpoints", "unet": "stableanimator",
                                                  "pose_net": "stableanimator", "face_encoder": "stableanimator"})

    @classmethod
    def execute(cls, svd_checkpoint, unet, pose_net, face_encoder, dtype) -> io.NodeOutput:
        vae, clip_vision = loading.load_svd_parts(full_path("checkpoints", svd_checkpoint))
        model, animator = loading.load_animator(full_path("stableanimator", unet), full_path("stableanimator", pose_net),
                                                full_path("stableanimator", face_encoder), dtype)
        return io.NodeOutput(model, clip_vision, vae, animator)


class StableAnimatorApply(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorApply",
            display_name="Apply Animator",
            category=CATEGORY,
            description="Patches the ID adapter into the 16 spatial cross-attentions and PoseNet's features into the "
                        "output of conv_in (cond branch only), and sets the official long-video windows as ComfyUI "
                        "context windows (every window holds frame 0, triangular blending, CFG after fusion). The "
                        "face tokens and pose frames come from Animator Conditioning, so one patched MODEL "
                        "serves any reference, with the Animator Sampler or a core KSampler.",
            inputs=[
                io.Model.Input("model", tooltip="MODEL from the Load Animator Models."),
                ANIMATOR.Input("animator", tooltip="ANIMATOR from the Load Animator Models."),
                io.Float.Input("id_strength", default=1.0, min=0.0, max=3.0, step=0.05,
                               tooltip="Scale of the face (ID) branch in every spatial cross-attention. 1.0 is official."),
                io.Float.Input("pose_strength", default=1.0, min=0.0, max=3.0, step=0.05,
                               tooltip="Scale of the PoseNet features added after conv_in. 1.0 is official."),
                io.Int.Input("window", default=16, min=2, max=128,
                             tooltip="Frames per model call for long videos. Every window also holds frame 0. Official: 16 "
                                     "(SVD-xt was trained on 16). Videos up to this length run in one call."),
                io.Int.Input("overlap", default=4, min=1, max=127,
                             tooltip="Frames shared by neighbouring windows, counting frame 0 that every window holds, "
                                     "blended with triangular weights. Official: 4. At least 1 (with 0 some frames lie "
                                     "in no window) and smaller than window."),
            ],
            outputs=[io.Model.Output(display_name="MODEL", tooltip="The patched MODEL, for the Animator Sampler, a KSampler or HJB Face Optimisation.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        # the window rule before the ranges: for overlap 0 (below the minimum) it says why, not only "below its minimum"
        if all(type(values.get(k)) is int for k in ("window", "overlap")):
            problem = window_problem(values["window"], values["overlap"])
            if problem:
                raise StableAnimatorError(f"{node_name(cls)}: {problem}")
        return check_inputs(cls, values)

    @classmethod
    def execute(cls, model, animator, id_strength, pose_strength, window, overlap) -> io.NodeOutput:
        return io.NodeOutput(apply_stableanimator(model, animator, id_strength, pose_strength, window, overlap))


NODES = [StableAnimatorModelLoader, StableAnimatorApply]
