"""Pose nodes: DWPose loading, keypoint extraction, alignment to the reference, official-style rendering
and face boxes. Keypoints travel as POSE_KEYPOINT (comfyui_controlnet_aux's OpenPose JSON), so aux's
nodes and ours connect both ways."""
import logging

import numpy as np
import torch
from comfy_api.latest import io

from ..stableanimator_core.pose.dwpose_estimate import DETECTOR_FILE, POSE_FILE, load_dwpose
from ..stableanimator_core.renamed_options import RENAMED_OPTIONS
from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.image_ops import to_rgb
from ..stableanimator_core.onnx_providers import CHOICES as PROVIDERS, CHOICES_HELP as PROVIDER_HELP, providers_for
from ..stableanimator_core.pose.pose_align import align_poses
from ..stableanimator_core.pose.pose_face_boxes import boxes_to_masks, face_boxes
from ..stableanimator_core.pose.pose_format import PoseFrame, from_pose_keypoint, to_pose_keypoint
from ..stableanimator_core.pose.pose_render import canvas_problem, render_poses
from . import model_folders
from .socket_types import BOXES, DWPOSE, POSE_KEYPOINT
from .validation import canonical, check_inputs, known, provider_rule, require_finite

log = logging.getLogger("StableAnimator")

CATEGORY = "StableAnimator/pose"
DWPOSE_SOURCE = "https://huggingface.co/yzd-v/DWPose (also in the DWPose/ folder of " + model_folders.OFFICIAL_WEIGHTS + ")"


# What the file names in models/dwpose say they hold.
DWPOSE_KINDS = {"detector": ("yolo", "det"), "pose_model": ("dw-ll", "dwpose", "ucoco", "rtmpose", "wholebody")}


def _onnx_files(kind: str, default: str) -> list[str]:
    try:
        import folder_paths
        files = [f for f in folder_paths.get_filename_list("dwpose") if f.lower().endswith(".onnx")]
    except Exception:  # the folder is not registered yet
        files = []
    files = model_folders.files_of_kind(sorted(files), kind, DWPOSE_KINDS)
    # the default stays selectable when it is missing, so running tells the user where it belongs
    return sorted(set(files) | {default}, key=lambda f: (f != default, f))


class StableAnimatorDWPoseLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorDWPoseLoader",
            display_name="Load DWPose",
            category=model_folders.LOADER_CATEGORY,
            description="Loads DWPose's two onnx networks from models/dwpose (never downloads): the YOLOX-L "
                        "person detector and the 133-keypoint whole-body model the official pipeline uses.",
            inputs=[
                io.Combo.Input("detector", options=_onnx_files("detector", DETECTOR_FILE), default=DETECTOR_FILE,
                               tooltip=f"Person detector in models/dwpose; the official one is {DETECTOR_FILE}."),
                io.Combo.Input("pose_model", options=_onnx_files("pose_model", POSE_FILE), default=POSE_FILE,
                               tooltip=f"Whole-body keypoint model in models/dwpose; the official one is {POSE_FILE}."),
                io.Combo.Input("device", options=PROVIDERS, default="auto",
                               tooltip=PROVIDER_HELP),
            ],
            outputs=[DWPOSE.Output(display_name="dwpose", tooltip="The loaded DWPose networks.")],
        )

    COMBO_ALIASES = RENAMED_OPTIONS["StableAnimatorDWPoseLoader"]

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, weights={"detector": "dwpose", "pose_model": "dwpose"},
                            rules=[provider_rule(cls, "device")])

    @classmethod
    def execute(cls, detector, pose_model, device) -> io.NodeOutput:
        paths = []
        for name in (detector, pose_model):
            try:
                paths.append(model_folders.full_path("dwpose", name))
            except FileNotFoundError:
                raise StableAnimatorError(
                    f"'{name}' is not in the dwpose model folder ({model_folders.folder_hint('dwpose')}). "
                    f"That folder needs {DETECTOR_FILE} and {POSE_FILE}, from {DWPOSE_SOURCE}; "
                    "put them there and press 'r' in ComfyUI to refresh the lists.") from None
        return io.NodeOutput(load_dwpose(paths[0], paths[1], providers_for(canonical(cls, "device", device))))


class StableAnimatorPoseExtract(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorPoseExtract",
            display_name="Extract Poses",
            category=CATEGORY,
            description="Finds every person in every frame with DWPose and returns their body, face and hand "
                        "keypoints in pixels (POSE_KEYPOINT). A frame without a person gets an empty skeleton.",
            inputs=[
                DWPOSE.Input("dwpose", tooltip="From Load DWPose."),
                io.Image.Input("images", tooltip="Driving video frames or the reference image; any size, any count."),
            ],
            outputs=[POSE_KEYPOINT.Output(display_name="pose_keypoint",
                                         tooltip="One OpenPose-style dict per frame, compatible with comfyui_controlnet_aux.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values)

    @classmethod
    def execute(cls, dwpose, images) -> io.NodeOutput:
        import comfy.model_management
        import comfy.utils

        require_finite(cls, "images", images)
        rgb = to_rgb(images)
        h, w = rgb.shape[1:3]
        bar = comfy.utils.ProgressBar(len(rgb))
        poses = []
        for i in range(len(rgb)):   # one frame at a time: no uint8 copy of a long clip
            comfy.model_management.throw_exception_if_processing_interrupted()
            frame = (rgb[i].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            poses.append(PoseFrame(w, h, dwpose(np.ascontiguousarray(frame), frame_index=i)))
            bar.update(1)
        return io.NodeOutput(to_pose_keypoint(poses))


class StableAnimatorPoseAlign(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorPoseAlign",
            display_name="Align Poses",
            category=CATEGORY,
            description="Rescales and shifts the driving skeletons onto the reference person's body as the "
                        "official DWPose/skeleton_extraction.py does: one least-squares fit over all frames of "
                        "head, shoulder, hip, knee and ankle heights, the same scale in x, mean offset in x. "
                        "The result lives on the reference's canvas.",
            inputs=[
                POSE_KEYPOINT.Input("driving", tooltip="Keypoints of the driving frames (Pose Extract on the video)."),
                POSE_KEYPOINT.Input("reference", tooltip="Keypoints of the reference image; its first frame and first person are used."),
                io.Boolean.Input("align", default=True,
                                 tooltip="Off passes the driving keypoints through unchanged (for poses already "
                                         "drawn for this reference)."),
            ],
            outputs=[POSE_KEYPOINT.Output(display_name="pose_keypoint", tooltip="The aligned driving keypoints.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values)

    @classmethod
    def execute(cls, driving, reference, align) -> io.NodeOutput:
        if not align:
            return io.NodeOutput(driving)
        drv = from_pose_keypoint(driving)
        ref = from_pose_keypoint(reference)
        if not ref:
            raise StableAnimatorError("the reference POSE_KEYPOINT holds no frame")
        return io.NodeOutput(to_pose_keypoint(align_poses(drv, ref[0])))


class StableAnimatorPoseRender(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorPoseRender",
            display_name="Render Poses",
            category=CATEGORY,
            description="Draws keypoints the way the official training and inference pose images were drawn: "
                        "on a canvas with a 2160-pixel short side, then downscaled (thin sticks), colours "
                        "scaled by confidence, body limbs at 60%, hands and face included.",
            inputs=[
                POSE_KEYPOINT.Input("pose_keypoint", tooltip="Keypoints to draw (aligned ones for generation)."),
                io.Int.Input("width", default=512, min=0, max=4096, step=8,
                             tooltip="Image width in pixels, the video width when the images drive a generation (a "
                                     "multiple of 64; official 512 or 576). 0 uses the keypoints' canvas width."),
                io.Int.Input("height", default=512, min=0, max=4096, step=8,
                             tooltip="Image height in pixels, the video height when the images drive a generation (a "
                                     "multiple of 64; official 512 or 1024). 0 uses the keypoints' canvas height."),
                io.Boolean.Input("body", default=True, tooltip="Draw the body skeleton."),
                io.Boolean.Input("hands", default=True, tooltip="Draw both hands."),
                io.Boolean.Input("face", default=True, tooltip="Draw the face points."),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="One RGB pose image per frame, black background."),
                     # the video size is set here once and linked on, so no other node can disagree with it
                     io.Int.Output(display_name="width", tooltip="Width of the images: link it to the width of "
                                                                 "Conditioning and Face Boxes."),
                     io.Int.Output(display_name="height", tooltip="Height of the images: link it to the height of "
                                                                  "Conditioning and Face Boxes.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, rules=[
            lambda v: canvas_problem(v["width"], v["height"]) if known(v, "width", "height") and v["width"] and v["height"]
            else None])

    @classmethod
    def execute(cls, pose_keypoint, width, height, body, hands, face) -> io.NodeOutput:
        frames = from_pose_keypoint(pose_keypoint)
        if not frames:
            raise StableAnimatorError("the POSE_KEYPOINT input holds no frame")
        width = width or frames[0].width
        height = height or frames[0].height
        problem = canvas_problem(width, height)
        if problem:
            raise StableAnimatorError(f"{problem} (0 took the size from the keypoints' canvas)")
        out = render_poses(frames, width, height, body=body, hands=hands, face=face)
        return io.NodeOutput(torch.from_numpy(out).float().div(255), width, height)


class StableAnimatorFaceBoxes(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorFaceBoxes",
            display_name="Face Boxes",
            category=CATEGORY,
            description="One face rectangle per frame from the face keypoints (all people together), as a "
                        "mask batch and as boxes, at the generation size. A frame without a face gets the whole "
                        "frame, as the official mask script does.",
            inputs=[
                POSE_KEYPOINT.Input("pose_keypoint", tooltip="Keypoints, usually the aligned driving keypoints."),
                io.Int.Input("width", default=512, min=0, max=4096, step=8,
                             tooltip="Mask width in pixels: link it from Render Poses' width so the masks match the "
                                     "video. 0 uses the keypoints' canvas width."),
                io.Int.Input("height", default=512, min=0, max=4096, step=8,
                             tooltip="Mask height in pixels: link it from Render Poses' height so the masks match the "
                                     "video. 0 uses the keypoints' canvas height."),
                io.Float.Input("expand", default=1.2, min=1.0, max=3.0, step=0.05,
                               tooltip="Grow each box about its centre by this factor (the 68 face points stop at the "
                                       "eyebrows, so a little growth covers the forehead)."),
                io.Float.Input("min_score", default=0.3, min=0.0, max=1.0, step=0.05,
                               tooltip="Face points below this confidence are ignored."),
            ],
            outputs=[
                io.Mask.Output(display_name="masks", tooltip="(frames, height, width), 1 inside each face box."),
                BOXES.Output(display_name="boxes", tooltip="(frames, 4) float tensor of x0, y0, x1, y1 in pixels."),
            ],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values)

    @classmethod
    def execute(cls, pose_keypoint, width, height, expand, min_score) -> io.NodeOutput:
        frames = from_pose_keypoint(pose_keypoint)
        if not frames:
            raise StableAnimatorError("the POSE_KEYPOINT input holds no frame")
        width = width or frames[0].width
        height = height or frames[0].height
        boxes, _ = face_boxes(frames, width, height, expand=expand, min_score=min_score)
        masks = boxes_to_masks(boxes, width, height)
        return io.NodeOutput(torch.from_numpy(masks), torch.from_numpy(boxes))


NODES = [StableAnimatorDWPoseLoader, StableAnimatorPoseExtract, StableAnimatorPoseAlign,
         StableAnimatorPoseRender, StableAnimatorFaceBoxes]
