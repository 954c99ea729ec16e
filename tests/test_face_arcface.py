"""The HJB ArcFace: arcface_torch iresnet key layout, strict .pth/.safetensors loading, and the torch
network rebuilt from a glintr100-style ONNX agreeing with onnxruntime."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from fixtures.face_models import export_iresnet_onnx, make_scrfd_onnx, tiny_iresnet
from stableanimator_core.face.arcface import IResNet, IResNetConfig, expected_keys, from_onnx, load_arcface, load_state_dict_strict
from stableanimator_core.errors import StableAnimatorError


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_official_iresnet100_layout_has_925_tensors():
    keys = expected_keys()
    assert len(keys) == 925
    assert keys["fc.weight"] == (512, 25088)
    assert keys["features.weight"] == (512,) and "features.num_batches_tracked" in keys
    assert keys["layer1.0.downsample.0.weight"] == (64, 64, 1, 1)
    assert keys["layer3.29.conv2.weight"] == (256, 256, 3, 3) and "layer3.30.conv1.weight" not in keys
    assert keys["layer4.2.bn3.running_var"] == (512,)
    with torch.device("meta"):
        params = sum(p.numel() for p in IResNet().parameters())
    assert params == 65_156_160  # facts §6


@pytest.mark.slow
def test_full_size_state_dict_loads_strictly():
    sd = {k: (torch.zeros(s, dtype=torch.long) if k.endswith("num_batches_tracked") else torch.randn(s) * 0.01)
          for k, s in expected_keys().items()}
    model = load_state_dict_strict(IResNet(), sd, "glintr100_torch.pth")
    assert model.config == IResNetConfig()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_tiny_checkpoint_roundtrip(tmp_path, suffix):
    model = tiny_iresnet(seed=3)
    path = tmp_path / f"glintr100_torch{suffix}"
    if suffix == ".pth":
        torch.save(model.state_dict(), path)
    else:
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    loaded = load_arcface(str(path))
    assert loaded.config == model.config and not loaded.training
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_wrong_checkpoint_is_refused_with_the_offending_keys(tmp_path):
    sd = tiny_iresnet().state_dict()
    sd.pop("layer2.1.bn3.running_mean")
    sd["extra.weight"] = torch.zeros(3)
    path = tmp_path / "not_arcface.pth"
    torch.save(sd, path)
    with pytest.raises(StableAnimatorError, match=r"not_arcface\.pth.*missing keys layer2\.1\.bn3\.running_mean.*unexpected keys extra\.weight"):
        load_arcface(str(path))
    other = tmp_path / "unet.pth"
    torch.save({"down.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(StableAnimatorError, match=r"unet\.pth.*conv1\.weight"):
        load_arcface(str(other))
    sd = tiny_iresnet().state_dict()
    sd["fc.weight"] = torch.zeros(512, 7)
    torch.save(sd, tmp_path / "bad_fc.pth")
    with pytest.raises(StableAnimatorError, match=r"bad_fc\.pth.*wrong shapes fc\.weight"):
        load_arcface(str(tmp_path / "bad_fc.pth"))
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(StableAnimatorError, match="garbage.pth"):
        load_arcface(str(tmp_path / "garbage.pth"))


@pytest.mark.parametrize("fold_bn", [True, False], ids=["bn-folded", "bn-kept"])
def test_torch_from_onnx_matches_onnxruntime(tmp_path, fold_bn):
    model = tiny_iresnet(layers=(2, 3, 2, 1), widths=(8, 16, 16, 32), stem=8, seed=5)
    path = tmp_path / "glintr100.onnx"
    export_iresnet_onnx(model, path, fold_bn=fold_bn)
    rebuilt = from_onnx(str(path))
    assert rebuilt.config == model.config
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = (torch.rand(4, 3, 112, 112) * 2 - 1)
    want = session.run(None, {"input.1": x.numpy()})[0]
    with torch.no_grad():
        got = rebuilt(x).numpy()
        orig = model(x).numpy()
    assert rel_err(got, want) <= 1e-4
    assert rel_err(orig, want) <= 1e-4
    assert load_arcface(str(path)).config == model.config  # .onnx goes through from_onnx


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")
def test_torch_export_of_iresnet_loads(tmp_path):
    """The same check on a file written by torch.onnx.export (the tool that produced glintr100.onnx)."""
    model = tiny_iresnet(seed=7)
    path = tmp_path / "exported.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 112, 112),), str(path), input_names=["input.1"],
                      opset_version=13, do_constant_folding=True, dynamo=False)   # the pinned torch has it
    rebuilt = from_onnx(str(path))
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input.1": x[:1].numpy()})[0]
    with torch.no_grad():
        assert rel_err(rebuilt(x[:1]).numpy(), want) <= 1e-4


def test_non_iresnet_onnx_is_refused(tmp_path):
    make_scrfd_onnx(tmp_path / "scrfd_10g_bnkps.onnx")
    with pytest.raises(StableAnimatorError, match=r"scrfd_10g_bnkps\.onnx.*not an iresnet"):
        from_onnx(str(tmp_path / "scrfd_10g_bnkps.onnx"))


def test_gradients_reach_the_input_but_not_the_weights():
    model = tiny_iresnet().eval().requires_grad_(False)
    x = (torch.rand(2, 3, 112, 112) * 2 - 1).requires_grad_(True)
    ref = torch.randn(512)
    loss = (1 - torch.nn.functional.cosine_similarity(model(x), ref[None], dim=1)).abs().mean()
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
