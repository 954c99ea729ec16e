"""The sampler with HJB face optimisation, in inference mode as inside the host: it changes the result, stays
finite, and no gradient reaches the UNet."""
import importlib

import pytest
import torch

import test_hjb
from fixtures.official_reference import build_tiny_pipeline

FRAMES, H, W = 3, 64, 64


class FaceEmbed:
    def __init__(self, box, size):
        self.embedding = torch.zeros(1, 512)
        self.boxes = torch.tensor([box], dtype=torch.float32)
        self.found = torch.tensor([True])
        self.image_size = size

    def __len__(self):
        return 1


@pytest.fixture(scope="module")
def parts(pack, comfy_inprocess, tmp_path_factory):
    import comfy.model_management as mm
    import comfy.model_patcher
    sampling = importlib.import_module(pack.__name__ + ".nodes.sampling")
    hjb_nodes = importlib.import_module(pack.__name__ + ".nodes.hjb")
    hjb_core = importlib.import_module(pack.__name__ + ".stableanimator_core.sampling.hjb")
    pipeline = build_tiny_pipeline(pack, tmp_path_factory.mktemp("hjb"), FRAMES, H, W)
    vae = test_hjb._svd_vae(small=True, seed=1)
    with torch.inference_mode():
        arcface = comfy.model_patcher.ModelPatcher(test_hjb._centred_arcface(), load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
    masks = torch.zeros(FRAMES, H, W)
    masks[:, 16:48, 20:44] = 1
    reference = torch.rand(1, 96, 80, 3, generator=torch.Generator().manual_seed(5))

    def make_hjb(start=0, end=1):
        settings = hjb_core.HJBSettings(start=start, end=end, iterations=2, context=2)
        return hjb_nodes.HJBFaceOptimisation(vae, arcface, reference, FaceEmbed([20, 20, 60, 70], (96, 80)), masks, settings)

    return sampling, pipeline, make_hjb


def test_hjb_changes_the_result_without_touching_the_unet(parts):
    sampling, (model, positive, negative, latent, _), make_hjb = parts
    args = (model, positive, negative, latent, 0, 3, 3.0, 3.0, "euler", "karras", 1.0, 16, 4)
    with torch.inference_mode():
        plain = sampling.run_sampler(*args)["samples"]
        refined = sampling.run_sampler(*args, hjb=make_hjb())["samples"]
    assert torch.isfinite(refined).all()
    assert (refined - plain).abs().max() > 1e-4
    unet = model.model.diffusion_model
    assert all(p.grad is None for p in unet.parameters())


def test_hjb_outside_its_steps_changes_nothing(parts):
    sampling, (model, positive, negative, latent, _), make_hjb = parts
    args = (model, positive, negative, latent, 0, 2, 3.0, 3.0, "euler", "karras", 1.0, 16, 4)
    with torch.inference_mode():
        plain = sampling.run_sampler(*args)["samples"]
        late = sampling.run_sampler(*args, hjb=make_hjb(start=5, end=9))["samples"]
    assert torch.equal(plain, late)


def test_hjb_needs_euler_and_a_mask_per_frame(parts):
    sampling, (model, positive, negative, latent, _), make_hjb = parts
    with pytest.raises(Exception, match="sampler_name to euler"):
        sampling.run_sampler(model, positive, negative, latent, 0, 2, 3.0, 3.0, "heun", "karras", 1.0, 16, 4, hjb=make_hjb())
    hjb = make_hjb()
    hjb.masks = hjb.masks[:2]
    with pytest.raises(Exception, match="2 face masks for 3 frames"):
        sampling.run_sampler(model, positive, negative, latent, 0, 2, 3.0, 3.0, "euler", "karras", 1.0, 16, 4, hjb=hjb)
