"""The ComfyUI-patched model against an independent reference with the official semantics, built here on
diffusers' UNetSpatioTemporalConditionModel from the same small random weights."""
import pytest
import torch

from fixtures.official_reference import build_tiny_pipeline, reference_x0, relative_error

SIGMAS = [5.0, 700.0]
# fp16 keeps 11 significant bits, bf16 8 (unit roundoff 4.9e-4, 3.9e-3); measured here: 1.3e-3 and 1.2e-2
TOLERANCE = {"fp16": 5e-3, "bf16": 4e-2}
FRAMES, H, W = 3, 128, 64     # portrait, latent 16x8: a width/height swap anywhere breaks the comparison


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



@pytest.mark.parametrize("name,dtype", [("fp16", torch.float16), ("bf16", torch.bfloat16)])
def test_half_precision_loads_and_stays_close_to_fp32(setup, pack, tmp_path, name, dtype):
    """fp16/bf16 from the loader: every weight (UNet, ID adapter, PoseNet, face encoder) is stored in that dtype
    and one guided prediction stays close to fp32's (ComfyUI computes in fp32 on a CPU, casting the weights)."""
    from importlib import import_module
    loading = import_module(pack.__name__ + ".nodes.loading")
    model, positive, negative, latent, _ = build_tiny_pipeline(pack, tmp_path, FRAMES, H, W, dtype=name)
    unet = model.model.diffusion_model
    assert model.model.get_dtype() == dtype
    # ComfyUI keeps SVD's time_mixer blend factors (one number each) in fp32
    assert {p.dtype for n, p in unet.named_parameters() if not n.endswith("time_mixer.mix_factor")} == {dtype}
    animator = loading.load_animator(str(tmp_path / "unet.pth"), str(tmp_path / "pose_net.pth"),
                                     str(tmp_path / "face_encoder.pth"), name)[1]
    assert animator.dtype == dtype
    assert {p.dtype for p in animator.pose_net.model.parameters()} == {dtype}
    assert {p.dtype for p in animator.face_encoder.model.parameters()} == {dtype}
    assert {w.dtype for kv in animator.id_adapter.values() for w in kv.values()} == {dtype}

    full, pos32, neg32, lat32, _ = setup
    noise = torch.randn(latent["samples"].shape, generator=torch.Generator().manual_seed(4))
    want = comfy_x0(full, pos32, neg32, lat32, noise, SIGMAS[0], 2.0)
    got = comfy_x0(model, positive, negative, latent, noise, SIGMAS[0], 2.0)
    err = relative_error(got.float(), want)
    print(f"{name} vs fp32: relative error {err:.2e}")
    assert torch.isfinite(got).all()
    assert err < TOLERANCE[name], err
