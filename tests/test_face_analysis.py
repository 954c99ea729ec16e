"""antelopev2 face embedding through insightface's real FaceAnalysis code path, on stand-in ONNX files with
scrfd_10g_bnkps's and glintr100's signatures (tests/fixtures/face_models.py)."""
import logging
import shutil

import numpy as np
import pytest
import torch

from fixtures.face_models import expected_face, paint_face, textured_image, tiny_iresnet, write_antelopev2
from stableanimator_core.face.arcface import from_onnx
from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.face.face_analysis import CHANNEL_ORDERS, ON_MISSING, FaceAnalyzer, default_providers, find_pack_dir

CPU = ["CPUExecutionProvider"]
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # skimage's estimate() inside insightface


@pytest.fixture(scope="module")
def insightface_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("insightface")
    write_antelopev2(root, tiny_iresnet(seed=11))
    return root


@pytest.fixture(scope="module")
def analyzer(insightface_root):
    return FaceAnalyzer(str(insightface_root), providers=CPU)


def face_image(seed=0, kind="red", cell=(10, 8)):
    return paint_face(textured_image(seed), kind, *cell)


def test_insightface_routes_the_standins(insightface_root):
    from insightface.model_zoo import get_model
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.scrfd import SCRFD
    pack = insightface_root / "models" / "antelopev2"
    det = get_model(str(pack / "scrfd_10g_bnkps.onnx"), providers=CPU)
    rec = get_model(str(pack / "glintr100.onnx"), providers=CPU)
    assert isinstance(det, SCRFD) and det.use_kps and det.fmc == 3 and det._num_anchors == 2
    assert isinstance(rec, ArcFaceONNX) and rec.input_size == (112, 112) and rec.input_mean == 127.5


def test_loader_uses_detection_and_recognition_only(analyzer):
    assert set(analyzer.app.models) == {"detection", "recognition"}
    assert analyzer.providers == CPU and analyzer.det_size == 640


def test_embed_returns_the_known_face_and_its_raw_embedding(analyzer, insightface_root):
    img = face_image()
    out = analyzer.embed(torch.from_numpy(img[None]).float() / 255)
    box, kps = expected_face("red", 10, 8)
    assert out.found.tolist() == [True] and out.image_size == (640, 640)
    np.testing.assert_allclose(out.boxes[0].numpy(), box, atol=1e-3)
    np.testing.assert_allclose(out.landmarks[0].numpy(), kps, atol=1e-3)
    assert out.embedding.shape == (1, 512) and out.embedding.dtype == torch.float32
    # raw glintr100 output on insightface's aligned crop of the BGR image: recompute it with the torch port
    from insightface.utils.face_align import norm_crop
    crop_bgr = norm_crop(np.ascontiguousarray(img[..., ::-1]), kps, 112)
    x = torch.from_numpy(crop_bgr[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    net = from_onnx(str(insightface_root / "models" / "antelopev2" / "glintr100.onnx"))
    with torch.no_grad():
        want = net(x)[0]
    torch.testing.assert_close(out.embedding[0], want, rtol=1e-4, atol=1e-4)
    assert abs(float(out.embedding[0].norm()) - 1) > 1e-3  # not normalised


def test_largest_face_wins_and_image_scale_is_undone(analyzer):
    img = paint_face(face_image(1), "green", 4, 30)  # a 48px face besides the 128x144 one
    out = analyzer.embed(img[None])  # uint8 input
    np.testing.assert_allclose(out.boxes[0].numpy(), expected_face("red", 10, 8)[0], atol=1e-3)
    small = np.ascontiguousarray(img[::2, ::2])  # 320x320: the detector sees it scaled by 2
    out = analyzer.embed(small[None])
    np.testing.assert_allclose(out.boxes[0].numpy(), expected_face("red", 10, 8, scale=2.0)[0], atol=1.0)


def test_channel_order(analyzer):
    img = paint_face(face_image(2), "green", 4, 30)
    bgr = analyzer.embed(img[None], channel_order=CHANNEL_ORDERS[0])
    rgb = analyzer.embed(img[None], channel_order=CHANNEL_ORDERS[1])
    # fed as RGB (the official inference's swap) the red face looks blue to the detector: only green is left
    np.testing.assert_allclose(rgb.boxes[0].numpy(), expected_face("green", 4, 30)[0], atol=1e-3)
    np.testing.assert_allclose(bgr.boxes[0].numpy(), expected_face("red", 10, 8)[0], atol=1e-3)
    # "RGB (official)" on an image equals "BGR (training)" on the channel-swapped image
    swapped = analyzer.embed(np.ascontiguousarray(img[..., ::-1])[None], channel_order=CHANNEL_ORDERS[0])
    torch.testing.assert_close(swapped.embedding, rgb.embedding)
    with pytest.raises(StableAnimatorError, match="channel_order"):
        analyzer.embed(img[None], channel_order="BGR")


def test_no_face_raises_by_default(analyzer):
    blank = textured_image(3)
    with pytest.raises(StableAnimatorError, match=r"No face was found in image 2 of 2.*zero embedding"):
        analyzer.embed(np.stack([face_image(), blank]))


def test_no_face_zero_embedding_mode_warns(analyzer, caplog):
    blank = textured_image(3)
    with caplog.at_level(logging.WARNING, logger="StableAnimator"):
        out = analyzer.embed(np.stack([face_image(), blank]), on_missing=ON_MISSING[1])
    assert out.found.tolist() == [True, False]
    assert torch.count_nonzero(out.embedding[1]) == 0 and torch.count_nonzero(out.embedding[0]) > 0
    assert torch.count_nonzero(out.boxes[1]) == 0
    assert "no face was found in image 2 of 2" in caplog.text
    mask = out.box_mask()
    assert mask.shape == (2, 640, 640) and mask[1].sum() == 0
    assert mask[0].sum() == 128 * 144 and mask[0, 300, 300] == 1  # box (272,208)-(400,352)


def test_grayscale_and_rgba_inputs(analyzer):
    # RGBA: alpha is ignored, the embedding equals the RGB one (float IMAGE and uint8 inputs)
    img = face_image(4)
    rgb = analyzer.embed(torch.from_numpy(img[None]).float() / 255)
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 128, np.uint8)], -1)
    out = analyzer.embed(torch.from_numpy(rgba[None]).float() / 255)
    torch.testing.assert_close(out.embedding, rgb.embedding)
    assert analyzer.embed(rgba[None]).found.all()
    # grayscale (1 channel) runs; the stand-in detector only sees colour, so it finds no face
    grey = textured_image(5)[..., :1]
    g = analyzer.embed(torch.from_numpy(grey[None]).float() / 255, on_missing=ON_MISSING[1])
    assert g.found.tolist() == [False] and g.image_size == (640, 640)
    # a grey image is three equal channels: the same as its RGB expansion
    g3 = analyzer.embed(np.repeat(grey, 3, -1)[None], on_missing=ON_MISSING[1])
    torch.testing.assert_close(g.embedding, g3.embedding)


def test_missing_folder_and_files_are_reported(tmp_path, insightface_root):
    with pytest.raises(StableAnimatorError, match=r"models/antelopev2 does not exist.*scrfd_10g_bnkps\.onnx.*glintr100\.onnx.*huggingface"):
        FaceAnalyzer(str(tmp_path), providers=CPU)
    pack = tmp_path / "models" / "antelopev2"
    pack.mkdir(parents=True)
    shutil.copy(insightface_root / "models" / "antelopev2" / "scrfd_10g_bnkps.onnx", pack)
    with pytest.raises(StableAnimatorError, match=r"lacks glintr100\.onnx \(it has: scrfd_10g_bnkps\.onnx\)"):
        find_pack_dir(str(tmp_path))
    assert list((tmp_path / "models").iterdir()) == [pack]  # nothing was downloaded


def test_nested_zip_layout_is_accepted(tmp_path, insightface_root):
    nested = tmp_path / "models" / "antelopev2" / "antelopev2"
    shutil.copytree(insightface_root / "models" / "antelopev2", nested)
    assert find_pack_dir(str(tmp_path)) == str(nested)


def test_default_providers():
    assert default_providers(cuda_available=False) == ["CPUExecutionProvider"]
    assert default_providers()[-1] == "CPUExecutionProvider"
