"""Face identity nodes: antelopev2 face embeddings, the HJB ArcFace, and identity similarity (CSIM)."""
import os

import torch
from comfy_api.latest import io, ui

import folder_paths

from ..stableanimator_core.face.arcface import OFFICIAL_FILE, load_arcface
from ..stableanimator_core.errors import StableAnimatorError
from ..stableanimator_core.face.face_analysis import (ARCFACE_INPUT, CHANNEL_ORDERS, DET_SIZE, DETECTION_FILE,
                                                 MIN_FACE_SIZE, ON_MISSING, ON_MISSING_ALIASES, PACK_NAME,
                                                 RECOGNITION_FILE, FaceAnalyzer, find_pack_dir)
from ..stableanimator_core.onnx_providers import CHOICES as PROVIDERS, CHOICES_HELP as PROVIDER_HELP, providers_for
from ..stableanimator_core.face.similarity import format_values, identity_similarity, plot_similarity
from . import model_folders
from .socket_types import ARCFACE, FACE_ANALYSIS, FACE_EMBED
from .validation import check_inputs, known, provider_rule, require_finite, weight_problem

CATEGORY = "StableAnimator/face"
ONNX_PREFIX = "insightface/"
TORCH_PREFIX = "stableanimator/"


def _insightface_root() -> str:
    """The first models/insightface folder holding a complete antelopev2 pack (else the first one, to report)."""
    roots = folder_paths.get_folder_paths("insightface")
    for root in roots:
        try:
            find_pack_dir(root)
            return root
        except StableAnimatorError:
            continue
    if not roots:
        raise StableAnimatorError("no insightface model folder is registered; restart ComfyUI")
    if len(roots) > 1:
        try:
            find_pack_dir(roots[0])
        except StableAnimatorError as e:
            raise StableAnimatorError(f"{e} (also looked in: {', '.join(roots[1:])})") from None
    return roots[0]


class StableAnimatorFaceAnalysisLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorFaceAnalysisLoader",
            display_name="Load Face Analysis",
            category=model_folders.LOADER_CATEGORY,
            description=f"Loads insightface's antelopev2 pack ({DETECTION_FILE} detector + {RECOGNITION_FILE} "
                        "recognition) from models/insightface/models/antelopev2, as the official scripts do. "
                        "Nothing is downloaded: a missing file is reported with where to get it.",
            inputs=[
                io.Combo.Input("provider", options=PROVIDERS, default="auto",
                               tooltip=f"{PROVIDER_HELP} The official scripts run these models on the CPU."),
                io.Int.Input("det_size", default=DET_SIZE, min=160, max=1280, step=32,
                             tooltip="Detector input size in pixels (square). The official value is 640."),
            ],
            outputs=[FACE_ANALYSIS.Output(display_name="face_analysis",
                                             tooltip="Face detector + recognizer for Face Embed.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, rules=[
            provider_rule(cls, "provider"),
            lambda v: f"det_size {v['det_size']} is not a multiple of 32 (the detector's coarsest stride); use "
                      f"{max(32, round(v['det_size'] / 32) * 32)}" if known(v, "det_size") and v["det_size"] % 32 else None,
            lambda v: _pack_problem()])

    @classmethod
    def execute(cls, provider, det_size) -> io.NodeOutput:
        return io.NodeOutput(FaceAnalyzer(_insightface_root(), providers=providers_for(provider), det_size=det_size))


class StableAnimatorFaceEmbed(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorFaceEmbed",
            display_name="Face Embed",
            category=CATEGORY,
            description="Detects faces in each image and keeps the largest one's raw 512-d glintr100 embedding "
                        "(not normalised), its box and 5 landmarks: the identity input of StableAnimator's face "
                        "encoder, or frames to score with Identity Similarity.",
            inputs=[
                FACE_ANALYSIS.Input("face_analysis", tooltip="From Load Face Analysis."),
                io.Image.Input("images", tooltip="The reference photo, or generated frames to score. Grayscale and "
                                                 "RGBA images are accepted (alpha is ignored)."),
                io.Combo.Input("channel_order", options=CHANNEL_ORDERS, default=CHANNEL_ORDERS[0],
                               tooltip="insightface models were trained on BGR images; StableAnimator's training fed "
                                       "them BGR. The released inference scripts swap the channels by mistake and feed "
                                       "RGB: choose 'RGB (official inference)' to reproduce their embeddings exactly."),
                io.Combo.Input("on_missing", options=ON_MISSING, default=ON_MISSING[0],
                               tooltip="When an image shows no usable face, also after retrying with a border and with "
                                       f"crops: 'error' stops with a message; '{ON_MISSING[1]}' continues with a zero "
                                       "vector and logs a warning. (The official scripts retry with a second detector, "
                                       "RetinaFace, and use zeros only when that fails too.)"),
                # optional: prompts saved before this input existed still validate
                io.Int.Input("min_face_size", default=MIN_FACE_SIZE, min=0, max=4096, optional=True,
                             tooltip=f"Smallest face (box width and height, pixels) that is used. ArcFace reads faces "
                                     f"from {ARCFACE_INPUT}x{ARCFACE_INPUT} crops where a face spans about 75 px; under "
                                     f"{MIN_FACE_SIZE} px the enlarged face no longer identifies the person. 0 accepts "
                                     "any face. A smaller face is treated as no face (see on_missing)."),
            ],
            outputs=[
                FACE_EMBED.Output(display_name="face_embed",
                                     tooltip="Per image: embedding (512), box, landmarks and whether a face was found."),
                io.Mask.Output(display_name="face_mask",
                               tooltip="Filled rectangle of each image's face box (empty where no face was found); "
                                       "the official HJB masks are such rectangles."),
            ],
        )

    COMBO_ALIASES = {"on_missing": ON_MISSING_ALIASES}

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values)

    @classmethod
    def execute(cls, face_analysis, images, channel_order, on_missing, min_face_size=MIN_FACE_SIZE) -> io.NodeOutput:
        require_finite(cls, "images", images)
        embed = face_analysis.embed(images, channel_order=channel_order, on_missing=on_missing,
                                    min_face_size=min_face_size)
        return io.NodeOutput(embed, embed.box_mask())


def _arcface_options() -> list[str]:
    torch_files = [TORCH_PREFIX + f for f in folder_paths.get_filename_list("stableanimator")
                   if any(s in f.lower() for s in ("glint", "arcface", "iresnet"))]
    onnx_files = [ONNX_PREFIX + f for f in folder_paths.get_filename_list("insightface")
                  if os.path.basename(f).lower() == RECOGNITION_FILE]
    defaults = [TORCH_PREFIX + OFFICIAL_FILE, f"{ONNX_PREFIX}models/{PACK_NAME}/{RECOGNITION_FILE}"]
    return list(dict.fromkeys(torch_files + onnx_files + defaults))


def _arcface_entry(weights: str):
    """'stableanimator/<file>' or 'insightface/<file>' -> (folder key, file name)."""
    for prefix, key in ((ONNX_PREFIX, "insightface"), (TORCH_PREFIX, "stableanimator")):
        if weights.startswith(prefix):
            return key, weights[len(prefix):]
    raise StableAnimatorError(f"unknown ArcFace weights entry '{weights}': it must start with '{TORCH_PREFIX}' "
                              f"(models/stableanimator) or '{ONNX_PREFIX}' (models/insightface)")


def _arcface_problem(weights: str):
    try:
        key, name = _arcface_entry(weights)
    except StableAnimatorError as e:
        return str(e)
    return weight_problem("weights", key, name)


def _pack_problem():
    try:
        _insightface_root()
    except StableAnimatorError as e:
        return str(e)
    return None


class StableAnimatorArcFaceLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        options = _arcface_options()
        return io.Schema(
            node_id="StableAnimatorArcFaceLoader",
            display_name="Load ArcFace (HJB)",
            category=model_folders.LOADER_CATEGORY,
            description="Loads the differentiable iresnet100 ArcFace that scores identity in the HJB face "
                        f"optimisation: the official {OFFICIAL_FILE} from models/stableanimator, or rebuilt from "
                        f"antelopev2's {RECOGNITION_FILE} (same network, no extra download). Input 112x112 RGB "
                        "crops in [-1, 1], output raw 512-d features.",
            inputs=[
                io.Combo.Input("weights", options=options, default=options[0],
                               tooltip=f"'{TORCH_PREFIX}...' = a file in models/stableanimator ({OFFICIAL_FILE} or a "
                                       f".safetensors with the same keys); '{ONNX_PREFIX}...' = {RECOGNITION_FILE} in "
                                       "models/insightface, converted to torch when loaded."),
            ],
            outputs=[ARCFACE.Output(display_name="arcface",
                                        tooltip="A ModelPatcher around the torch IResNet, for the HJB sampler.")],
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values, weights={"weights": None}, rules=[
            lambda v: _arcface_problem(v["weights"]) if known(v, "weights") else None])

    @classmethod
    def execute(cls, weights) -> io.NodeOutput:
        import comfy.model_management as mm
        import comfy.model_patcher

        key, name = _arcface_entry(weights)
        try:
            path = model_folders.full_path(key, name)
        except FileNotFoundError as e:
            raise StableAnimatorError(str(e)) from None
        offload = mm.unet_offload_device()
        # ComfyUI runs nodes under inference_mode; HJB differentiates through this network later.
        with torch.inference_mode(False):
            module = load_arcface(path, device=offload)
        patcher = comfy.model_patcher.ModelPatcher(module, load_device=mm.get_torch_device(), offload_device=offload)
        return io.NodeOutput(patcher)


class StableAnimatorIdentitySimilarity(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="StableAnimatorIdentitySimilarity",
            display_name="Identity Similarity",
            category=CATEGORY,
            description="Cosine similarity between the reference face embedding and each frame's face embedding: "
                        "the paper's CSIM identity metric. Frames without a face are reported as n/a and left out "
                        "of mean and minimum.",
            inputs=[
                FACE_EMBED.Input("reference", tooltip="Face Embed of the reference image (its first image is used)."),
                FACE_EMBED.Input("frames", tooltip="Face Embed of the generated frames (use on_missing = zero "
                                                      "embedding so frames without a face do not stop the run)."),
            ],
            outputs=[
                io.Float.Output(display_name="mean", tooltip="Mean CSIM over frames with a face."),
                io.Float.Output(display_name="minimum", tooltip="Lowest CSIM over frames with a face."),
                io.String.Output(display_name="per_frame", tooltip="Comma-separated CSIM per frame (n/a = no face)."),
                io.Image.Output(display_name="plot", tooltip="CSIM per frame as a line plot."),
            ],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, **values):
        return check_inputs(cls, values)

    @classmethod
    def execute(cls, reference, frames) -> io.NodeOutput:
        result = identity_similarity(reference, frames)
        per_frame = format_values(result["values"])
        plot = torch.from_numpy(plot_similarity(result["values"])).unsqueeze(0)
        summary = (f"CSIM mean {result['mean']:.4f}, min {result['min']:.4f} over {len(frames) - result['missing']} "
                   f"of {len(frames)} frames\n{per_frame}")
        return io.NodeOutput(result["mean"], result["min"], per_frame, plot, ui=ui.PreviewText(summary))


NODES = [StableAnimatorFaceAnalysisLoader, StableAnimatorFaceEmbed, StableAnimatorArcFaceLoader,
         StableAnimatorIdentitySimilarity]
