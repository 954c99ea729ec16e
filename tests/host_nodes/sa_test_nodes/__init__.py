"""Test-only nodes loaded into the test host (never shipped with the pack): they feed inputs that no core node
makes, such as keypoints typed in as JSON, the way another pack's node would hand them over."""
import json


class SATestPoseKeypointJSON:
    """POSE_KEYPOINT from JSON text, as a keypoint editor or loader of another pack gives it. Python's json
    reads NaN and Infinity, so broken numbers arrive as they would from such a pack."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"multiline": True, "default": "[]"})}}

    RETURN_TYPES = ("POSE_KEYPOINT",)
    FUNCTION = "load"
    CATEGORY = "testing"

    def load(self, text):
        return (json.loads(text),)


class SATestBrokenPixels:
    """Copies an IMAGE and sets a size x size corner of every frame to `value` (nan, inf, -inf): what an
    upscaler or VAE that overflowed in fp16 hands on. Core nodes refuse inf values, so this node makes them."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "value": (["nan", "inf", "-inf"],),
                             "size": ("INT", {"default": 8, "min": 1, "max": 4096})}}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "brake"
    CATEGORY = "testing"

    def brake(self, images, value, size):
        out = images.clone()
        out[:, :size, :size] = float(value)
        return (out,)


NODE_CLASS_MAPPINGS = {"SATestPoseKeypointJSON": SATestPoseKeypointJSON, "SATestBrokenPixels": SATestBrokenPixels}
