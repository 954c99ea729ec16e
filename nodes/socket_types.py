"""The pack's own socket types, defined once. ComfyUI's core types (MODEL, CONDITIONING, LATENT, IMAGE, MASK,
VAE, CLIP_VISION) are used wherever they fit; these exist only where no core type does."""
from comfy_api.latest import io

ANIMATOR = io.Custom("STABLEANIMATOR_ANIMATOR")            # PoseNet + face encoder + ID adapter weights
FACE_ANALYSIS = io.Custom("STABLEANIMATOR_FACE_ANALYSIS")  # insightface antelopev2 detector + recogniser
FACE_EMBED = io.Custom("STABLEANIMATOR_FACE_EMBED")        # 512-d embeddings, boxes, landmarks
ARCFACE = io.Custom("STABLEANIMATOR_ARCFACE")              # differentiable iresnet100 (ModelPatcher)
DWPOSE = io.Custom("STABLEANIMATOR_DWPOSE")                # DWPose detector + pose estimator
POSE_KEYPOINT = io.Custom("POSE_KEYPOINT")                 # comfyui_controlnet_aux's keypoint format
BOXES = io.Custom("STABLEANIMATOR_BOXES")                  # per-frame face boxes
