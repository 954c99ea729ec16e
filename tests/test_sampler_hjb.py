"""HJB face optimisation carried by the MODEL, in inference mode as inside the host: under core KSampler it equals
an Euler loop written here that refines x0 before each step with the independent official HJB (fixtures/hjb_oracle,
none of the pack's HJB code), at steps 0, 1 and 2 (learning rate decayed); it changes the result, stays finite and never
reaches the UNet; one HJB MODEL serves runs of different frame counts; its networks ride with the UNet."""
import importlib

import pytest
import torch

from fixtures import hjb_oracle
from fixtures.hjb_models import centred_arcface, svd_vae
from fixtures.official_reference import build_tiny_pipeline

H, W = 64, 64
STEPS = 3


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
    hjb_nodes = importlib.import_module(pack.__name__ + ".nodes.hjb")
    hjb_core = importlib.import_module(pack.__name__ + ".stableanimator_core.sampling.hjb")
    three = build_tiny_pipeline(pack, tmp_path_factory.mktemp("hjb3"), 3, H, W)
    five = build_tiny_pipeline(pack, tmp_path_factory.mktemp("hjb5"), 5, H, W)
    vae = svd_vae(small=True, seed=1)
    with torch.inference_mode():
        arcface = comfy.model_patcher.ModelPatcher(centred_arcface(), load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
    masks = torch.zeros(5, H, W)
    masks[:, 16:48, 20:44] = 1
    reference = torch.rand(1, 96, 80, 3, generator=torch.Generator().manual_seed(5))
    face = FaceEmbed([20, 20, 60, 70], (96, 80))

    def settings(start=0, end=1, **kw):
        return hjb_core.HJBSettings(start=start, end=end, iterations=kw.pop("iterations", 2), context=2, **kw)

    def with_hjb(model, s=None, face_masks=masks):
        with torch.inference_mode():
            return hjb_nodes.apply_hjb(model, vae, arcface, reference, face, face_masks, s or settings())

    return dict(nodes=hjb_nodes, core=hjb_core, three=three, five=five, vae=vae, arcface=arcface, masks=masks,
                reference=reference, face=face, settings=settings, with_hjb=with_hjb)


def ksampler(model, pipeline, steps=STEPS, sampler="euler"):
    import nodes
    _, positive, negative, latent, _ = pipeline
    with torch.inference_mode():
        return nodes.common_ksampler(model, 0, steps, 3.0, sampler, "karras", positive, negative, latent)[0]["samples"]


def independent_hjb_euler(p, pipeline, steps, iterations, chunk):
    """Euler written out here on the MODEL without HJB, the guided x0 of every step refined by the independent
    official HJB (official EulerDiscreteSchedulerPro: refine x0, then the Euler step with it). The oracle's own
    decoder copy, ArcFace, mask boxes and reference crop; no pack HJB code."""
    import comfy.sample
    import comfy.samplers
    model, positive, negative, latent, _ = pipeline
    frames = latent["samples"].shape[0]
    decoder = hjb_oracle.plain_small_decoder(p["vae"])
    arcface = centred_arcface()                       # the same seeded weights as the MODEL's, as normal tensors
    ref = hjb_oracle.reference_embedding(arcface, p["reference"], (20, 20, 59, 69))   # detector box 20,20,60,70
    boxes = hjb_oracle.mask_boxes(p["masks"][:frames])

    @torch.no_grad()
    def euler_refined(model_fn, x, sigmas, extra_args=None, callback=None, disable=None):
        s_in = x.new_ones([x.shape[0]])
        for i in range(len(sigmas) - 1):
            denoised = model_fn(x, sigmas[i] * s_in, **extra_args)
            denoised = hjb_oracle.refine(denoised, i, len(sigmas) - 1, decoder, arcface, ref, boxes,
                                         iterations=iterations, chunk=chunk)
            x = x + (x - denoised) / sigmas[i] * (sigmas[i + 1] - sigmas[i])
        return x

    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "karras", steps)
    noise = comfy.sample.prepare_noise(latent["samples"], 0)
    with torch.inference_mode():
        return comfy.sample.sample_custom(model, noise, 3.0, comfy.samplers.KSAMPLER(euler_refined), sigmas, positive,
                                          negative, latent["samples"], seed=0)


def test_hjb_under_core_ksampler_equals_the_independent_official_hjb(parts):
    """Three steps, all refined (learning rates 0.1, 0.067, 0.033), whole frames decoded in clips of 2 frames as
    the official code does; two Adam iterations per step."""
    p = parts
    model = p["three"][0]
    plain = ksampler(model, p["three"])
    hjb_model = p["with_hjb"](model, p["settings"](start=0, end=STEPS - 1, full_frame=True, chunk=2))
    refined = ksampler(hjb_model, p["three"])
    expected = independent_hjb_euler(p, p["three"], STEPS, iterations=2, chunk=2)
    assert torch.isfinite(refined).all()
    effect = (expected - plain).norm()
    apart = (refined - expected).norm()
    print(f"\npack vs independent HJB: {apart / effect:.2e} of what HJB changed")
    assert effect > 1e-3 * plain.norm()                # HJB did something
    assert apart < 1e-3 * effect, float(apart / effect)
    assert all(q.grad is None for q in model.model.diffusion_model.parameters())


def test_checkpointing_is_chosen_from_free_memory_and_changes_nothing(parts, monkeypatch, caplog):
    """Decoder activations are kept when half the free memory holds them and recomputed otherwise; the refined
    result is the same either way, up to float rounding (Adam divides each gradient by its own size, so where a
    gradient is ~0 the rounding of the two backward orders moves z by up to lr)."""
    p = parts
    hjb_model = p["with_hjb"](p["three"][0])
    plain = ksampler(p["three"][0], p["three"], steps=2)
    results = {}
    for free, word in ((0, "recomputed"), (1 << 50, "kept")):
        monkeypatch.setattr(p["nodes"].mm, "get_free_memory", lambda *a, free=free, **k: free)
        caplog.clear()
        with caplog.at_level("INFO", logger="StableAnimator"):
            results[word] = ksampler(hjb_model, p["three"], steps=2)
        said = [r.getMessage() for r in caplog.records if "decoder activations" in r.getMessage()]
        assert len(said) == 1 and word in said[0], said   # decided once per run, at the first refined step
    effect = (results["kept"] - plain).norm()
    apart = (results["kept"] - results["recomputed"]).norm()
    print(f"\nkept vs recomputed: {apart / effect:.2e} of what HJB changed")
    assert apart < 0.05 * effect


def test_one_hjb_model_runs_different_frame_counts_back_to_back(parts):
    p = parts
    hjb_model = p["with_hjb"](p["three"][0])
    three = ksampler(hjb_model, p["three"], steps=2)
    five = ksampler(hjb_model, p["five"], steps=2)        # the same HJB MODEL, now 5 frames: boxes rebuilt per run
    again = ksampler(hjb_model, p["three"], steps=2)
    assert three.shape[0] == 3 and five.shape[0] == 5 and torch.isfinite(five).all()
    torch.testing.assert_close(again, three, rtol=0, atol=0)   # no state left over from the 5-frame run


def test_hjb_outside_its_steps_changes_nothing(parts):
    p = parts
    model = p["three"][0]
    late = p["with_hjb"](model, p["settings"](start=5, end=9))
    torch.testing.assert_close(ksampler(late, p["three"], steps=2), ksampler(model, p["three"], steps=2), rtol=0, atol=0)


def test_hjb_needs_a_mask_per_frame(parts):
    p = parts
    short = p["with_hjb"](p["three"][0], face_masks=p["masks"][:2])
    with pytest.raises(Exception, match="2 face masks for 3 frames"):
        ksampler(short, p["three"], steps=1)


def test_hjb_networks_ride_with_the_unet_and_run_state_is_freed(parts):
    p = parts
    hjb_model = p["with_hjb"](p["three"][0])
    extra = hjb_model.get_additional_models()
    assert p["arcface"] in extra
    decoder = [m for m in extra if m is not p["arcface"] and m.model.__class__.__name__ == "VideoDecoder"]
    assert len(decoder) == 1   # the decoder copy is a ModelPatcher that model management loads with the UNet
    patch = hjb_model.model_options["sampler_post_cfg_function"][-1]
    ksampler(hjb_model, p["three"], steps=1)
    assert patch.run is None   # per-run state dropped at the end of the run


def test_reference_without_a_face_is_refused_at_the_node(parts):
    p = parts
    face = FaceEmbed([20, 20, 60, 70], (96, 80))
    face.found[0] = False
    with pytest.raises(Exception, match="no face was found"), torch.inference_mode():
        p["nodes"].apply_hjb(p["three"][0], p["vae"], p["arcface"], p["reference"], face, p["masks"], p["settings"]())
