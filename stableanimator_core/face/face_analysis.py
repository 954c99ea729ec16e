"""Face identity embedding for the face encoder: insightface FaceAnalysis with the antelopev2 pack.

What the official scripts do (facts §1.1): scrfd_10g_bnkps finds faces at det_size 640, the largest
face (bbox area) is kept and glintr100 embeds its 5-point-aligned 112x112 crop; the raw 512-d
`embedding` (not `normed_embedding`) feeds FusionFaceId. When scrfd finds nothing they retry with another
detector (facexlib's RetinaFace on a 512 px aligned crop) and only then fall back to a zero vector. We have
no second detector, so we retry scrfd on other views of the image instead (a border around the whole image
for faces that fill the frame, overlapping crops for small faces in large photos, as IPAdapter_plus retries
at other detector sizes) before giving up. Nothing here downloads: the pack folder is checked first and a
missing file is reported with where antelopev2 is published.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import torch

from ..renamed_options import RENAMED_OPTIONS
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
ON_MISSING = ["error", "zero embedding (no identity)"]
ON_MISSING_ALIASES = RENAMED_OPTIONS["StableAnimatorFaceEmbed"]["on_missing"]   # old labels of saved workflows
# ArcFace embeds a 112x112 crop in which insightface's alignment template puts the eyes 35 px apart and the face
# box spans about 75 px; smaller faces are enlarged and lose identity. Measured with insightface's buffalo_s
# networks on skimage's astronaut, downscaled (cosine to the full-size face's embedding): face box 45 px 0.96,
# 34 px 0.90, 23 px 0.74, 11 px 0.32, 5 px -0.02 (tests/test_face_real.py repeats the measurement).
MIN_FACE_SIZE = 40
ARCFACE_INPUT = 112
# Retry views: (left, top, right, bottom) as fractions of the image, and a border as a fraction of the view's
# longer side. A border shrinks a face that fills the frame into the detector's range and gives it context;
# a crop enlarges small faces of a photo bigger than the detector's 640 px input.
RETRY_VIEWS = [((0, 0, 1, 1), 0.25), ((0, 0, 1, 1), 0.5)] + \
    [((x, y, x + 0.6, y + 0.6), 0.0) for x, y in ((0, 0), (0.4, 0), (0, 0.4), (0.4, 0.4), (0.2, 0.2))]


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
        # insightface puts its sessions back on the CPU for ctx_id < 0, whatever the providers say
        ctx_id = -1 if self.providers[0] == "CPUExecutionProvider" else 0
        self.app.prepare(ctx_id=ctx_id, det_thresh=det_thresh, det_size=(self.det_size, self.det_size))

    def __repr__(self) -> str:
        return f"FaceAnalyzer({self.pack_dir}, providers={self.providers}, det_size={self.det_size})"

    def analyze(self, image_rgb: np.ndarray, channel_order: str = CHANNEL_ORDERS[0], retry: bool = True):
        """One HxWx3 uint8 RGB image -> insightface faces (list of Face), largest first, and a description of
        the view that found them (None for the whole image, as the official scripts look)."""
        if channel_order not in CHANNEL_ORDERS:
            raise StableAnimatorError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
        # insightface models expect BGR. The official inference scripts hand them RGB by mistake.
        img = np.ascontiguousarray(image_rgb[..., ::-1] if channel_order == CHANNEL_ORDERS[0] else image_rgb)
        faces, view = self.app.get(img), None
        if not faces and retry:
            faces, view = self._retry(img)
        return sorted(faces, key=lambda f: -_area(f.bbox)), view

    def _retry(self, img: np.ndarray):
        """Detection on the RETRY_VIEWS; faces are mapped back and embedded from the original pixels."""
        h, w = img.shape[:2]
        rec = self.app.models["recognition"]
        crops = []
        for (fx0, fy0, fx1, fy1), border in RETRY_VIEWS:
            x0, y0, x1, y1 = int(fx0 * w), int(fy0 * h), int(round(fx1 * w)), int(round(fy1 * h))
            pad = int(round(border * max(x1 - x0, y1 - y0)))
            view = np.pad(img[y0:y1, x0:x1], ((pad, pad), (pad, pad), (0, 0)))
            found = []
            for face in self.app.get(np.ascontiguousarray(view)):
                shift = np.array([x0 - pad, y0 - pad], np.float32)
                face.bbox = np.asarray(face.bbox, np.float32).copy()
                face.bbox[:4] += np.tile(shift, 2)
                if face.kps is not None:
                    face.kps = np.asarray(face.kps, np.float32) + shift
                    rec.get(img, face)   # embed from the original pixels, as the first pass does
                found.append(face)
            name = f"a border of {border:.0%}" if border else "crops of 60% of the image"
            if found and border:
                return found, name
            crops += found
        return _dedupe(crops), "crops of 60% of the image" if crops else None

    def embed(self, images, channel_order: str = CHANNEL_ORDERS[0], on_missing: str = ON_MISSING[0],
              min_face_size: int = MIN_FACE_SIZE) -> FaceEmbedding:
        """Largest face's raw embedding per image.

        images: a ComfyUI IMAGE tensor (B,H,W,C) in [0,1], or uint8 arrays (H,W,C) / (B,H,W,C); C may be
        1 (grayscale), 3 or 4 (alpha ignored). When the whole image shows no face, other views are tried
        (RETRY_VIEWS). A face whose box is narrower or shorter than min_face_size pixels counts as no face.
        on_missing: "error" raises, "zero embedding (no identity)" continues with zeros (found=False) and logs
        a warning.
        """
        on_missing = ON_MISSING_ALIASES.get(on_missing, on_missing)
        if on_missing not in ON_MISSING:
            raise StableAnimatorError(f"on_missing must be one of {ON_MISSING}, got {on_missing!r}")
        batch = images_to_uint8(images)
        n, h, w = batch.shape[:3]
        emb = torch.zeros(n, EMBED_DIM)
        boxes, lmk = torch.zeros(n, 4), torch.zeros(n, 5, 2)
        found, scores = torch.zeros(n, dtype=torch.bool), torch.zeros(n)
        crowded = []
        for i in range(n):
            faces, view = self.analyze(batch[i], channel_order)
            where = f"image {i + 1} of {n}" if n > 1 else "the image"
            problem = advice = None
            if not faces:
                problem = (f"No face was found in {where} ({w}x{h}, channel order {channel_order}), also not after "
                           "retrying with a border and with crops")
                advice = "Use a photo with a clearly visible frontal face"
            else:
                fw, fh = (float(v) for v in np.asarray(faces[0].bbox[2:4]) - np.asarray(faces[0].bbox[:2]))
                if min(fw, fh) < min_face_size:
                    problem = (f"The largest face in {where} is only {fw:.0f}x{fh:.0f} px, under min_face_size "
                               f"({min_face_size} px)")
                    advice = (f"ArcFace reads a face from a {ARCFACE_INPUT}x{ARCFACE_INPUT} aligned crop in which it "
                              "spans about 75 px, so a smaller face is enlarged and its embedding no longer identifies "
                              "the person (cosine to the same face at full size: 0.96 at 45 px, 0.74 at 23 px, 0.32 at "
                              "11 px). Use a larger or closer photo of the face, or lower min_face_size to accept it")
            if problem:
                if on_missing == ON_MISSING[0]:
                    raise StableAnimatorError(f"{problem}. {advice}; or set on_missing to '{ON_MISSING[1]}' to "
                                              "continue without identity.")
                log.warning("StableAnimator: %s; using a zero identity embedding for it", problem[0].lower() + problem[1:])
                continue
            if view is not None:
                log.info("StableAnimator: the face in %s was found only on retry, with %s", where, view)
            if len(faces) > 1:
                crowded.append((i, faces))
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
        _warn_crowded(crowded, n)
        return FaceEmbedding(embedding=emb, boxes=boxes, landmarks=lmk, found=found, image_size=(h, w),
                             det_scores=scores)


def _area(bbox) -> float:
    return float((bbox[2] - bbox[0]) * (bbox[3] - bbox[1]))


def _describe(face) -> str:
    x0, y0, x1, y1 = (float(v) for v in face.bbox[:4])
    return f"{x1 - x0:.0f}x{y1 - y0:.0f} px at ({x0:.0f}, {y0:.0f})"


def _warn_crowded(crowded, n: int) -> None:
    """The official scripts silently take the largest face; say so when there was a choice."""
    if not crowded:
        return
    if n == 1:
        faces = crowded[0][1]
        others = ", ".join(_describe(f) for f in faces[1:6]) + (" ..." if len(faces) > 6 else "")
        log.warning("StableAnimator: %d faces found in the image; using the largest, %s (the others: %s). "
                    "Crop the photo to the wanted person if that is not them.", len(faces), _describe(faces[0]), others)
    else:
        shown = ", ".join(f"{i + 1} ({len(f)})" for i, f in crowded[:10]) + (" ..." if len(crowded) > 10 else "")
        log.warning("StableAnimator: several faces in %d of %d images, the largest is used in each: image (faces) %s",
                    len(crowded), n, shown)


def _dedupe(faces, iou: float = 0.5):
    """Faces found in overlapping crops, each kept once (the largest box of a group)."""
    kept = []
    for f in sorted(faces, key=lambda f: -_area(f.bbox)):
        a = np.asarray(f.bbox[:4], np.float64)
        if all(_iou(a, np.asarray(k.bbox[:4], np.float64)) < iou for k in kept):
            kept.append(f)
    return kept


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = _area(a) + _area(b) - inter
    return inter / union if union > 0 else 0.0


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
