"""The face nodes in-process: ArcFace loader (ModelPatcher, differentiable after inference_mode) and the
analysis loader's error when antelopev2 is missing."""
import pytest
import torch

from fixtures.face_models import export_iresnet_onnx, tiny_iresnet


@pytest.fixture
def model_dirs(pack, tmp_path):
    import folder_paths
    pack.nodes.model_folders.register()
    saved = {k: (list(v[0]), set(v[1])) for k, v in folder_paths.folder_names_and_paths.items()
             if k in ("stableanimator", "insightface")}
    for key in ("stableanimator", "insightface"):
        (tmp_path / key).mkdir()
        paths, exts = folder_paths.folder_names_and_paths[key]
        folder_paths.folder_names_and_paths[key] = ([str(tmp_path / key)], exts)
    yield tmp_path
    folder_paths.folder_names_and_paths.update(saved)


def test_arcface_loader_gives_a_differentiable_model_patcher(pack, model_dirs):
    import comfy.model_patcher
    model = tiny_iresnet(seed=9)
    torch.save(model.state_dict(), model_dirs / "stableanimator" / "glintr100_torch.pth")
    pack_dir = model_dirs / "insightface" / "models" / "antelopev2"
    pack_dir.mkdir(parents=True)
    export_iresnet_onnx(model, pack_dir / "glintr100.onnx")
    node = pack.nodes.face.StableAnimatorArcFaceLoader
    options = node.define_schema().inputs[0].options
    assert "stableanimator/glintr100_torch.pth" in options
    assert "insightface/models/antelopev2/glintr100.onnx" in options
    x = torch.rand(1, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        want = model(x)
    for choice in ("stableanimator/glintr100_torch.pth", "insightface/models/antelopev2/glintr100.onnx"):
        with torch.inference_mode():  # as ComfyUI runs every node
            patcher = node.execute(choice).args[0]
        assert isinstance(patcher, comfy.model_patcher.ModelPatcher)
        net = patcher.model
        assert not any(p.is_inference() for p in net.parameters())
        with torch.inference_mode():  # the HJB sampler re-enables autograd inside a node
            with torch.inference_mode(False), torch.enable_grad():
                z = x.clone().requires_grad_(True)
                out = net(z)
                out.square().sum().backward()
        assert z.grad is not None and z.grad.abs().sum() > 0
        torch.testing.assert_close(out.detach(), want, rtol=1e-4, atol=1e-4)


def test_arcface_loader_missing_file(pack, model_dirs):
    node = pack.nodes.face.StableAnimatorArcFaceLoader
    with pytest.raises(pack.stableanimator_core.errors.StableAnimatorError, match=r"glintr100_torch\.pth.*stableanimator"):
        node.execute("stableanimator/glintr100_torch.pth")


def test_face_analysis_loader_reports_missing_pack(pack, model_dirs):
    node = pack.nodes.face.StableAnimatorFaceAnalysisLoader
    with pytest.raises(pack.stableanimator_core.errors.StableAnimatorError,
                       match=r"antelopev2.*scrfd_10g_bnkps\.onnx and glintr100\.onnx"):
        node.execute("CPU", 640)
