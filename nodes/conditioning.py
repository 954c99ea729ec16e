"""Animator Conditioning: reference, face embedding and pose frames -> positive, negative, LATENT."""
import torch

import comfy.conds
import comfy.hooks
import comfy.model_management as mm
from comfy_api.latest import io

from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.image_ops import check_size, resize_lanczos, to_rgb
from ..stableanimator_core.model.reference_prep import clip_input, noised_vae_input, pose_tensor
from .images import validate_size
from .host_internals import cond_with
from .patching import run_checks_hook
from .socket_types import ANIMATOR, FACE_EMBED
from .validation import check_inputs, known, require_finite

CATEGORY = "StableAnimator"


class CONDPerFrame(comfy.conds.CONDRegular):
    """Per-frame conditioning (pose frames and their mask). Core's CONDRegular repeats or cuts a tensor to the
    model call's batch, which would silently reuse the wrong pose frames whenever a call's frames are not the
    ones the tensor holds (a context-window node that does not slice model_conds along frames); refuse that."""

    def process_cond(self, batch_size, **kwargs):
        if self.cond.shape[0] != batch_size:
            raise StableAnimatorError(
                f"this model call has {batch_size} frames but got {self.cond.shape[0]} StableAnimator pose frames: "
                "another node's context windows (e.g. Context Windows (Manual)) do not hand StableAnimator the pose "
                "frames of each window; set the windows with Apply Animator's window and overlap instead")
        return cond_with(self, self.cond)


def face_tokens(animator, id_embedding: torch.Tensor, clip_embed: torch.Tensor) -> torch.Tensor:
    """FusionFaceId on the device ComfyUI gives it: (1,512) + (1,1,C) -> (1,tokens,C)."""
    patcher = animator.face_encoder
    mm.load_model_gpu(patcher)
    weight = patcher.model.norm.weight
    with torch.no_grad():
        tokens = patcher.model(id_embedding.to(weight.device, weight.dtype), clip_embed.to(weight.device, weight.dtype))
    return tokens.to(mm.intermediate_device(), torch.float32)


def build_conditioning(clip_vision, vae, animator, face_embed, reference, poses, width, height, frames,
                       fps, motion_bucket_id, augmentation, seed):
    check_size(width, height)
    reference = to_rgb(reference)[:1]
    poses = to_rgb(poses)
    if tuple(poses.shape[1:3]) != (height, width):
        # stretching them here would hide a size set in two places; the pose frames are the video's layout
        raise StableAnimatorError(
            f"the pose images are {poses.shape[2]}x{poses.shape[1]} but the video size is {width}x{height}: link "
            "width and height from the node that makes the pose images (Render Poses, or Resize Images for loaded "
            "frames) so the size is set in one place")
    if frames == 0:
        frames = poses.shape[0]
    if poses.shape[0] < frames:
        raise StableAnimatorError(f"{frames} frames were requested but only {poses.shape[0]} pose images were given: "
                                  "connect more pose frames or lower `frames` (0 uses every pose frame)")
    if clip_vision is None:
        raise StableAnimatorError("no CLIP vision model: svd_xt.safetensors without CLIP weights needs a CLIP vision "
                                  "loader (clip_vision_h) connected to clip_vision")
    embedding = face_embed.embedding[:1].float()
    if embedding.shape[-1] != animator.face_encoder.model.proj[0].in_features:
        raise StableAnimatorError(f"the face embedding has {embedding.shape[-1]} values but the face encoder expects "
                                  f"{animator.face_encoder.model.proj[0].in_features}: use the antelopev2 face embedding")

    clip_embed = clip_vision.encode_image(clip_input(reference), crop=False)["image_embeds"].float().unsqueeze(1)
    tokens = face_tokens(animator, embedding, clip_embed)
    context = torch.cat([clip_embed.to(tokens), tokens], dim=1)          # token 0 CLIP, then the face tokens

    generator = torch.Generator().manual_seed(seed)
    vae_pixels = noised_vae_input(resize_lanczos(reference, width, height), augmentation, generator)
    ref_latent = vae.encode(vae_pixels)
    pose = pose_tensor(poses[:frames])

    shared = {"fps": fps, "motion_bucket_id": motion_bucket_id, "augmentation_level": augmentation}

    def entry(ctx, time_ctx, latent, pose_on):
        mask = torch.full((frames, 1, 1, 1), float(pose_on))
        return [[ctx, {**shared, "concat_latent_image": latent, "time_conditioning": time_ctx,
                       "model_conds": {"sa_pose": CONDPerFrame(pose), "sa_pose_mask": CONDPerFrame(mask)}}]]

    # Official uncond: zero CLIP and face tokens, zero reference latent, no pose.
    positive = entry(context, clip_embed, ref_latent, 1)
    negative = entry(torch.zeros_like(context), torch.zeros_like(clip_embed), torch.zeros_like(ref_latent), 0)
    checks = run_checks_hook()   # under any sampler: Apply present, latent matching the pose frames
    positive = comfy.hooks.set_hooks_for_conditioning(positive, checks)
    negative = comfy.hooks.set_hooks_for_conditioning(negative, checks)
    latent = torch.zeros([frames, 4, height // 8, width // 8], device=mm.intermediate_device())
    return positive, negative, {"samples": latent}


class StableAnimatorConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorConditioning",
            display_name="Animator Conditioning",
            category=CATEGORY,
            description="Prepares the reference as the official pipeline does (CLIP input squashed to 224x224, VAE "
                        "input resized to the target size and noise-augmented), turns the face embedding into face "
                        "tokens, and attaches the pose frames to the positive branch. Outputs positive, negative "
                        "and an empty latent of `frames` frames.",
            inputs=[
                io.ClipVision.Input("clip_vision", tooltip="SVD-xt's CLIP vision (from the StableAnimator loader)."),
                io.Vae.Input("vae", tooltip="SVD-xt's VAE (from the StableAnimator loader)."),
                ANIMATOR.Input("animator", tooltip="ANIMATOR from the StableAnimator loader (face encoder and PoseNet)."),
                FACE_EMBED.Input("face_embed", tooltip="The reference's antelopev2 face embedding (Face Embed)."),
                io.Image.Input("reference", tooltip="The reference photo of the person; the first image is used."),
                io.Image.Input("pose_images", tooltip="Skeleton frames in the official style, one per output frame, "
                                                      "at the video size (Render Poses, or Resize Images for loaded "
                                                      "frames)."),
                io.Int.Input("width", default=512, min=64, max=2048, step=64,
                             tooltip="Video width, a multiple of 64; equal to the pose images' width (link it from Render Poses "
                                     "or Resize Images). Official: 512 (square) or 576 (portrait)."),
                io.Int.Input("height", default=512, min=64, max=2048, step=64,
                             tooltip="Video height, a multiple of 64; equal to the pose images' height (link it from Render "
                                     "Poses or Resize Images). Official: 512 (square) or 1024 (portrait)."),
                io.Int.Input("frames", default=0, min=0, max=4096,
                             tooltip="Number of frames to generate; 0 uses every pose frame."),
                io.Int.Input("fps", default=7, min=1, max=1024,
                             tooltip="SVD's fps conditioning (the UNet sees fps-1). Official: 7."),
                io.Int.Input("motion_bucket_id", default=127, min=1, max=1023,
                             tooltip="SVD's motion conditioning. Official: 127."),
                io.Float.Input("augmentation", default=0.02, min=0.0, max=10.0, step=0.01,
                               tooltip="Noise added to the reference before VAE encoding, in [-1,1] pixel units as "
                                       "in the official code (ComfyUI's SVD node uses half that scale). Official: 0.02."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Seed of the augmentation noise."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="CLIP + face tokens, reference latent, pose frames."),
                io.Conditioning.Output(display_name="negative", tooltip="The official unconditional branch: zeros, no pose."),
                io.Latent.Output(display_name="latent", tooltip="Empty video latent: frames x 4 x height/8 x width/8."),
            ],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, rules=[
            lambda v: validate_size(v["width"], v["height"]) if known(v, "width", "height") else None])

    @classmethod
    def execute(cls, clip_vision, vae, animator, face_embed, reference, pose_images, width, height, frames,
                fps, motion_bucket_id, augmentation, seed) -> io.NodeOutput:
        require_finite(cls, "reference", reference)
        require_finite(cls, "pose_images", pose_images)
        return io.NodeOutput(*build_conditioning(clip_vision, vae, animator, face_embed, reference, pose_images,
                                                 width, height, frames, fps, motion_bucket_id, augmentation, seed))


NODES = [StableAnimatorConditioning]
