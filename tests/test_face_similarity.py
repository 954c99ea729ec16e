"""Identity similarity (CSIM): cosine of raw embeddings, core and node."""
import math

import numpy as np
import pytest
import torch

from fixtures.face_models import tiny_iresnet
from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.face.face_analysis import FaceEmbedding
from stableanimator_core.face.face_crop import crop_faces
from stableanimator_core.face.similarity import cosine_similarity, format_values, identity_similarity, plot_similarity


def make_embed(cls, vectors, found=None):
    n = len(vectors)
    return cls(embedding=torch.as_tensor(np.asarray(vectors, np.float32)), boxes=torch.zeros(n, 4),
               landmarks=torch.zeros(n, 5, 2), found=torch.ones(n, dtype=torch.bool) if found is None
               else torch.tensor(found), image_size=(64, 64))


def test_identical_crops_give_one():
    net = tiny_iresnet(seed=2)
    frames = torch.rand(1, 3, 96, 96) * 2 - 1
    box = torch.tensor([[10, 12, 70, 80]])
    with torch.no_grad():
        a = net(crop_faces(frames, box))
        b = net(crop_faces(frames.clone(), box))
        other = net(crop_faces(torch.rand(1, 3, 96, 96) * 2 - 1, box))
    assert cosine_similarity(a[0], b).item() == pytest.approx(1.0, abs=1e-6)
    assert cosine_similarity(a[0], other).item() < 1.0 - 1e-6


def test_similarity_values_and_missing_frames():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(1, 512))
    frames = np.concatenate([ref * 3.0, -ref, rng.normal(size=(1, 512)), np.zeros((1, 512))])
    res = identity_similarity(make_embed(FaceEmbedding, ref), make_embed(FaceEmbedding, frames, [1, 1, 1, 0]))
    v = res["values"]
    assert v[0] == pytest.approx(1.0, abs=1e-6) and v[1] == pytest.approx(-1.0, abs=1e-6)
    direct = float(frames[2] @ ref[0] / np.linalg.norm(frames[2]) / np.linalg.norm(ref[0]))
    assert v[2] == pytest.approx(direct, abs=1e-6) and math.isnan(v[3])
    assert res["mean"] == pytest.approx((1 - 1 + direct) / 3, abs=1e-6) and res["min"] == pytest.approx(-1, abs=1e-6)
    assert res["missing"] == 1
    assert format_values(v).endswith(", n/a") and format_values(v).startswith("1.0000, -1.0000")
    img = plot_similarity(v)
    assert img.shape == (320, 640, 3) and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    assert (img < 0.99).any()


def test_reference_without_face_is_an_error():
    ref = make_embed(FaceEmbedding, np.zeros((1, 512)), [0])
    with pytest.raises(StableAnimatorError, match="reference has no detected face"):
        identity_similarity(ref, make_embed(FaceEmbedding, np.ones((2, 512))))
    with pytest.raises(StableAnimatorError, match="no face was found in any of the 2 frames"):
        identity_similarity(make_embed(FaceEmbedding, np.ones((1, 512))), make_embed(FaceEmbedding, np.ones((2, 512)), [0, 0]))


def test_node_numbers_match_a_direct_computation(pack):
    from_pack = pack.stableanimator_core.face.face_analysis.FaceEmbedding
    node = pack.nodes.face.StableAnimatorIdentitySimilarity
    rng = np.random.default_rng(1)
    ref, frames = rng.normal(size=(1, 512)), rng.normal(size=(5, 512)) + 0.5 * rng.normal(size=(1, 512))
    frames[2] = ref[0] * 2
    out = node.execute(make_embed(from_pack, ref), make_embed(from_pack, frames))
    mean, minimum, per_frame, plot = out.args
    direct = frames @ ref[0] / np.linalg.norm(frames, axis=1) / np.linalg.norm(ref[0])
    assert mean == pytest.approx(direct.mean(), abs=1e-5) and minimum == pytest.approx(direct.min(), abs=1e-5)
    assert [float(s) for s in per_frame.split(", ")] == pytest.approx(direct.tolist(), abs=1e-4)
    assert plot.shape == (1, 320, 640, 3)
    assert "CSIM mean" in out.ui.as_dict()["text"][0]
