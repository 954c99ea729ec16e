"""Image preparation nodes: bring a reference photo or pose frames to the generation size."""
from comfy_api.latest import io

from ..stableanimator_core.image_ops import check_size, resize_fit, to_rgb
from ..stableanimator_core.errors import StableAnimatorError
from .validation import check_inputs, known, require_finite

CATEGORY = "StableAnimator"
RESIZE_METHODS = ["lanczos (official)", "bicubic", "bilinear", "nearest"]
FIT_OPTIONS = ["stretch (official)", "crop", "pad"]
FIT_HELP = ("How an image of another shape is brought to width x height: stretch (the official pipeline: the "
            "aspect changes, a face may be squeezed), crop (centre crop to the aspect, then resize: nothing is "
            "distorted, the edges are cut) or pad (resize to fit inside, black bars: nothing is cut or distorted).")


def fit_key(fit: str) -> str:
    """'stretch (official)' -> 'stretch': the core's name for a fit option."""
    return fit.split(" ")[0]


def validate_size(width, height):
    """validate_inputs answer for a generation size: True, or the message naming the fix. A linked size arrives
    as None here (ComfyUI validates before anything runs); the node checks it when it runs."""
    if width is None or height is None:
        return True
    try:
        check_size(width, height)
    except StableAnimatorError as e:
        return str(e)
    return True


class StableAnimatorResizeImage(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorResizeImage",
            display_name="Resize Images",
            category=CATEGORY,
            description="Resizes images to the generation size. The default does exactly what the official "
                        "pipeline does: stretched to width x height, no crop; crop and pad keep the aspect. "
                        "Grayscale and RGBA inputs become RGB.",
            inputs=[
                io.Image.Input("images", tooltip="A reference photo or a batch of pose frames."),
                io.Int.Input("width", default=512, min=64, max=2048, step=64,
                             tooltip="Output width in pixels; a multiple of 64. The official models know 512 and 576."),
                io.Int.Input("height", default=512, min=64, max=2048, step=64,
                             tooltip="Output height in pixels; a multiple of 64. The official models know 512 and 1024."),
                io.Combo.Input("method", options=RESIZE_METHODS, default=RESIZE_METHODS[0],
                               tooltip="Resampling filter. Lanczos matches the official reference preprocessing."),
                # last, so that saved workflows keep their widget order
                io.Combo.Input("fit", options=FIT_OPTIONS, default=FIT_OPTIONS[0], optional=True, tooltip=FIT_HELP),
            ],
            outputs=[io.Image.Output(display_name="images", tooltip="RGB images of exactly width x height."),
                     # the video size is set here once and linked on, so no other node can disagree with it
                     io.Int.Output(display_name="width", tooltip="The width: link it to Conditioning's width."),
                     io.Int.Output(display_name="height", tooltip="The height: link it to Conditioning's height.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, rules=[
            lambda v: validate_size(v["width"], v["height"]) if known(v, "width", "height") else None])

    @classmethod
    def execute(cls, images, width, height, method, fit=FIT_OPTIONS[0]) -> io.NodeOutput:
        check_size(width, height)
        require_finite(cls, "images", images)
        rgb = to_rgb(images)
        out = resize_fit(rgb, width, height, fit_key(fit), "lanczos" if method == RESIZE_METHODS[0] else method)
        return io.NodeOutput(out, width, height)


NODES = [StableAnimatorResizeImage]
