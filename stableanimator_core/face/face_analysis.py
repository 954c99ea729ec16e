"""Face identity embedding for the face encoder: insightface FaceAnalysis with the antelopev2 pack.

What the official scripts do (facts §1.1): scrfd_10g_bnkps finds faces at det_size 640, the largest
face (bbox area) is kept and glintr100 embeds its 5-point-aligned 112x112 crop; the raw 512-d
`embedding` (not `normed_embedding`) feeds FusionFaceId. Nothing here downloads: the pack folder is
checked first and a missing file is reported with where antelopev2 is published.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import StableAnimatorError
from ..onnx_providers import default_providers
from ..image_ops import to_rgb

log = logging.getLogger("StableAnimator")

PACK_NAME = "antelopev2"
DETECTION_FILE = "scrfd_10g_bnkps.onnx"
RECOGNITION_FILE = "glintr100.onnx"
DET_SIZE = 640
EMBED_DIM = 512
ANTELOPEV2_SOURCES = ("the official StableAnimator checkpoints (https://huggingface.co/FrancisRing/StableAnimator, "
                      "folder models/antelopev2) or insightface's model zoo (antelopev2.zip, "
                      "https://github.com/deepinsight/insightface/tree/master/python-package)")

CHANNEL_ORDERS = ["BGR (training)", "RGB (official inference)"]
ON_MISSING = ["error", "zero embedding (official)"]


@dataclass
class FaceEmbedding:
    """One face per image: the largest one, or zeros with found=False when none was detected."""

    embedding: torch.Tensor  # (N, 512) float32, raw glintr100 output (not normalised)
    boxes: torch.Tensor      # (N, 4) float32 pixel x0, y0, x1, y1 in the input image
    landmarks: torch.Tensor  # (N, 5, 2) float32 pixel x, y: eyes, nose, mouth corners
    found: torch.Tensor      # (N,) bool
    image_size: tuple        # (height, width) of the images
    det_scores: torch.Tensor = field(default=None)  # (N,) float32

    def __post_init__(self):
        if self.det_scores is None:
            self.det_scores = torch.zeros(len(self.embedding))

    def __len__(self) -> int:
        return int(self.embedding.shape[0])

    def box_mask(self) -> torch.Tensor:
        """(N, H, W) float masks, 1 inside each found face box (the official HJB masks are such rectangles)."""
        h, w = self.image_size
        masks = torch.zeros(len(self), h, w)
        for i in range(len(self)):
            if bool(self.found[i]):
                x0, y0, x1, y1 = self.boxes[i].tolist()
                xa, ya = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
                xb, yb = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
                masks[i, ya:yb, xa:xb] = 1.0
        return masks


def find_pack_dir(root: str, pack: str = PACK_NAME) -> str:
    """root is a models/insightface folder; the pack lives in root/models/<pack>.

    antelopev2.zip extracts to antelopev2/antelopev2/ when unzipped into its own folder: that
    nesting is accepted. Raises StableAnimatorError naming the folder and files when incomplete.
    """
    expected = (DETECTION_FILE, RECOGNITION_FILE)
    base = os.path.join(root, "models", pack)
    for candidate in (base, os.path.join(base, pack)):
        if all(os.path.isfile(os.path.join(candidate, f)) for f in expected):
            return os.path.abspath(candidate)
    if not os.path.isdir(base):
        problem = f"the folder {base} does not exist"
    else:
        present = sorted(f for f in os.listdir(base) if f.endswith(".onnx"))
        missing = [f for f in expected if not os.path.isfile(os.path.join(base, f))]
        problem = f"{base} lacks {', '.join(missing)} (it has: {', '.join(present) or 'no .onnx files'})"
    raise StableAnimatorError(
        f"The {pack} face models are missing: {problem}. Put {DETECTION_FILE} and {RECOGNITION_FILE} "
        f"(the rest of the pack is optional) into {base}; they are published with {ANTELOPEV2_SOURCES}. "
        "Nothing is downloaded automatically."
    )


class FaceAnalyzer:
    """antelopev2 detection + recognition through insightface's FaceAnalysis, never downloading."""

    def __init__(self, root: str, providers: list[str] | None = None, det_size: int = DET_SIZE,
                 det_thresh: float = 0.5, pack: str = PACK_NAME):
        try:
            from insightface.app import FaceAnalysis
        except ImportError as e:
            raise StableAnimatorError("face embedding needs the 'insightface' and 'onnxruntime' packages: "
                                      "pip install insightface onnxruntime (or onnxruntime-gpu)") from e
        self.pack_dir = find_pack_dir(root, pack)
        self.providers = list(providers or default_providers())
        self.det_size = int(det_size)
        # An absolute folder as `name` is used as is by every insightface version (no download branch).
        self.app = FaceAnalysis(name=self.pack_dir, root=root, allowed_modules=["detection", "recognition"],
                                providers=self.providers)
        if "recognition" not in self.app.models:
            raise StableAnimatorError(f"insightface did not recognise a face recognition model in {self.pack_dir}; "
                                      f"expected {RECOGNITION_FILE} (input 1x3x112x112, output 512)")
        ctx_id = 0 if self.providers[0] == "CUDAExecutionProvider" else -1
        self.app.prepare(ctx_id=ctx_id, det_thresh=det_thresh, det_size=(self.det_size, self.det_size))

    def __repr__(self) -> str:
        return f"FaceAnalyzer({self.pack_dir}, providers={self.providers}, det_size={self.det_size})"

    def analyze(self, image_rgb: np.ndarray, channel_order: str = CHANNEL_ORDERS[0]):
        """One HxWx3 uint8 RGB image -> insightface faces (list of Face), largest first."""
        if channel_order not in CHANNEL_ORDERS:
            raise StableAnimatorError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
        # insightface models expect BGR. The official inference scripts hand them RGB by mistake.
        img = image_rgb[..., ::-1] if channel_order == CHANNEL_ORDERS[0] else image_rgb
        faces = self.app.get(np.ascontiguousarray(img))
        return sorted(faces, key=lambda f: -float((f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1])))

    def embed(self, images, channel_order: str = CHANNEL_ORDERS[0], on_missing: str = ON_MISSING[0]) -> FaceEmbedding:
        """Largest face's raw embedding per image.

        images: a ComfyUI IMAGE tensor (B,H,W,C) in [0,1], or uint8 arrays (H,W,C) / (B,H,W,C); C may be
        1 (grayscale), 3 or 4 (alpha ignored). on_missing: "error" raises, "zero embedding (official)"
        continues with zeros (found=False) and logs a warning.
        """
        if on_missing not in ON_MISSING:
            raise StableAnimatorError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
        batch = images_to_uint8(images)
        n, h, w = batch.shape[:3]
        emb = torch.zeros(n, EMBED_DIM)
        boxes, lmk = torch.zeros(n, 4), torch.zeros(n, 5, 2)
        found, scores = torch.zeros(n, dtype=torch.bool), torch.zeros(n)
        for i in range(n):
            faces = self.analyze(batch[i], channel_order)
            if not faces:
                where = f"image {i + 1} of {n}" if n > 1 else "the image"
                if on_missing == ON_MISSING[0]:
                    raise StableAnimatorError(
                        f"No face was found in {where} ({w}x{h}, channel order {channel_order}). Use a photo with a "
                        "clearly visible frontal face, or set on_missing to 'zero embedding (official)' to continue "
                        "without identity (the official scripts then use a zero vector).")
                log.warning("StableAnimator: no face found in %s; using a zero identity embedding", where)
                continue
            face = faces[0]
            vec = getattr(face, "embedding", None)
            if vec is None:
                raise StableAnimatorError("insightface returned a face without an embedding; check that "
                                          f"{RECOGNITION_FILE} is a recognition model")
            vec = np.asarray(vec, dtype=np.float32).reshape(-1)
            if vec.shape[0] != EMBED_DIM:
                raise StableAnimatorError(f"the recognition model gives {vec.shape[0]}-d embeddings; StableAnimator's "
                                          f"face encoder needs {EMBED_DIM}-d ones from {RECOGNITION_FILE}")
            emb[i] = torch.from_numpy(vec)
            boxes[i] = torch.as_tensor(np.asarray(face.bbox[:4], dtype=np.float32))
            if face.kps is not None:
                lmk[i] = torch.as_tensor(np.asarray(face.kps, dtype=np.float32).reshape(5, 2))
            scores[i] = float(face.det_score)
            found[i] = True
        return FaceEmbedding(embedding=emb, boxes=boxes, landmarks=lmk, found=found, image_size=(h, w),
                             det_scores=scores)


def images_to_uint8(images) -> np.ndarray:
    """IMAGE tensor in [0,1] or uint8 array(s) with 1, 3 or 4 channels -> (B,H,W,3) uint8 RGB."""
    if isinstance(images, torch.Tensor):
        rgb = to_rgb(images.float().cpu())
        return (rgb.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        raise StableAnimatorError(f"expected uint8 images or a float IMAGE tensor, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[None, ..., None]
    elif arr.ndim == 3 and arr.shape[-1] in (1, 3, 4) and arr.shape[0] > 4:
        arr = arr[None]
    elif arr.ndim == 3:  # (B,H,W) grayscale batch
        arr = arr[..., None]
    if arr.ndim != 4:
        raise StableAnimatorError(f"expected images of shape (B,H,W,C), got {arr.shape}")
    return to_rgb(torch.from_numpy(np.ascontiguousarray(arr))).numpy()
