"""The ComfyUI-patched model against an independent reference with the official semantics, built here on
diffusers' UNetSpatioTemporalConditionModel from the same small random weights."""
import pytest
import torch

from fixtures.official_reference import build_tiny_pipeline, reference_x0, relative_error

SIGMAS = [5.0, 700.0]
FRAMES, H, W = 3, 64, 64      # latent 8x8


@pytest.fixture(scope="module")
def setup(pack, tmp_path_factory):
    return build_tiny_pipeline(pack, tmp_path_factory.mktemp("official"), FRAMES, H, W)


def comfy_x0(model, positive, negative, latent, noise, sigma, cfg):
    """The guided x0 prediction of one step through ComfyUI's own sampler, read from the step callback."""
    import comfy.sample
    import comfy.samplers
    seen = []
    comfy.sample.sample_custom(model, noise, cfg, comfy.samplers.sampler_object("euler"), torch.tensor([sigma, 0.0]),
                               positive, negative, latent["samples"], disable_pbar=True, seed=0,
                               callback=lambda step, x0, x, total: seen.append(x0.clone()))
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("sigma", SIGMAS)
def test_one_model_call_matches_official_semantics(setup, sigma):
    model, positive, negative, latent, ref = setup
    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(2))
    x = noise * sigma
    with torch.no_grad():
        cond = reference_x0(ref["unet"], x, sigma, ref["ref_latent"], ref["cond_context"], ref["time_ids"], ref["pose_features"])
        uncond = reference_x0(ref["unet"], x, sigma, torch.zeros_like(ref["ref_latent"]),
                              torch.zeros_like(ref["cond_context"]), ref["time_ids"], None)
    got_cond = comfy_x0(model, positive, negative, latent, noise, sigma, 1.0)
    got_uncond = comfy_x0(model, negative, positive, latent, noise, sigma, 1.0)
    print(f"sigma {sigma}: cond {relative_error(got_cond, cond):.2e}, uncond {relative_error(got_uncond, uncond):.2e}")
    assert relative_error(got_cond, cond) <= 1e-5
    assert relative_error(got_uncond, uncond) <= 1e-5
    assert relative_error(cond, uncond) > 1e-2          # the branches really differ

    # Batched cond+uncond with CFG 3 equals CFG on the official separate calls.
    got_cfg = comfy_x0(model, positive, negative, latent, noise, sigma, 3.0)
    assert relative_error(got_cfg, uncond + 3.0 * (cond - uncond)) <= 1e-5


def test_face_tokens_and_pose_change_the_output(setup):
    """Each StableAnimator part has an effect: the check above would be blind to a part that did nothing."""
    model, positive, negative, latent, ref = setup
    sigma = SIGMAS[0]
    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(3))
    x = noise * sigma
    with torch.no_grad():
        full = reference_x0(ref["unet"], x, sigma, ref["ref_latent"], ref["cond_context"], ref["time_ids"], ref["pose_features"])
        no_pose = reference_x0(ref["unet"], x, sigma, ref["ref_latent"], ref["cond_context"], ref["time_ids"], None)
        no_face = ref["cond_context"].clone()
        no_face[:, 1:] = 0
        without_face = reference_x0(ref["unet"], x, sigma, ref["ref_latent"], no_face, ref["time_ids"], ref["pose_features"])
    assert relative_error(no_pose, full) > 1e-3 and relative_error(without_face, full) > 1e-3
    assert relative_error(comfy_x0(model, positive, negative, latent, noise, sigma, 1.0), full) <= 1e-5

