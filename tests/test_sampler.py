"""The sampler: official window schedules, equivalence with an independent official-semantics sampling loop,
periodic noise, interruption."""
import math

import pytest
import torch

from fixtures.official_reference import build_tiny_pipeline, reference_v, relative_error, x0_from_v
from stableanimator_core.errors import StableAnimatorError
from stableanimator_core.sampling.windows import cfg_scales, periodic_noise, triangle_weights, window_indices


def official_tiles(frames, tile=16, overlap=4):
    """The official tile rule (inference pipeline, facts §1.1 step 9), written out here independently."""
    indices = [[0, *range(i + 1, min(i + tile, frames))] for i in range(0, frames - tile + 1, tile - overlap)]
    if indices[-1][-1] < frames - 1:
        indices.append([0, *range(frames - tile + 1, frames)])
    return indices


@pytest.mark.parametrize("frames", [1, 15, 16, 17, 40, 100])
def test_window_schedule_follows_the_official_rule(frames):
    windows = window_indices(frames, 16, 4)
    if frames < 16:   # the official code raises here; we run one window of all frames
        assert windows == [list(range(frames))]
    else:
        assert windows == official_tiles(frames)
        assert all(len(w) == 16 and w[0] == 0 for w in windows)
    assert sorted({f for w in windows for f in w}) == list(range(frames))   # every frame covered


def test_window_examples_from_the_official_code():
    assert [w[1:][0] for w in window_indices(40)] == [1, 13, 25] and window_indices(40)[-1][-1] == 39
    assert [w[1] for w in window_indices(41)] == [1, 13, 25, 26]


def test_triangle_weights_and_scales():
    w = triangle_weights(16)
    assert torch.allclose(w[:3], torch.tensor([0.0625, 0.1875, 0.3125], dtype=w.dtype))
    assert torch.equal(w, w.flip(0)) and (w > 0).all()
    assert torch.allclose(cfg_scales(5, 1.0, 3.0), torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0], dtype=torch.float64))


def test_periodic_noise_and_bad_settings():
    noise = torch.randn(40, 4, 2, 2)
    p = periodic_noise(noise, 16)
    assert torch.equal(p[16], p[0]) and torch.equal(p[39], p[7]) and torch.equal(p[:16], noise[:16])
    assert torch.equal(periodic_noise(noise[:5], 16), noise[:5])
    with pytest.raises(StableAnimatorError, match="no frames"):
        window_indices(0)
    with pytest.raises(StableAnimatorError, match="overlap"):
        window_indices(20, 16, 15)


FRAMES, H, W = 11, 64, 64
WINDOW, OVERLAP, STEPS, SEED = 6, 2, 3, 7
CFG_MIN, CFG_MAX = 1.5, 3.0


@pytest.fixture(scope="module")
def pipeline(pack, tmp_path_factory):
    from importlib import import_module
    sampling = import_module(pack.__name__ + ".nodes.sampling")
    return sampling, build_tiny_pipeline(pack, tmp_path_factory.mktemp("sampler"), FRAMES, H, W)


def karras_sigmas(steps, sigma_min=0.002, sigma_max=700.0, rho=7.0):
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return [*s.tolist(), 0.0]


def official_sampling(ref, noise, steps):
    """The official loop: per window two separate UNet calls (uncond without pose), v fused with triangular
    weights, per-frame CFG after fusion, Euler on Karras sigmas, x0 from v."""
    sigmas = karras_sigmas(steps)
    x = noise.double().float() * math.sqrt(sigmas[0] ** 2 + 1)     # official init_noise_sigma
    tiles = official_tiles(FRAMES, WINDOW, OVERLAP)
    scale = torch.linspace(CFG_MIN, CFG_MAX, FRAMES).view(-1, 1, 1, 1)
    zero_ctx, zero_lat = torch.zeros_like(ref["cond_context"]), torch.zeros_like(ref["ref_latent"])
    for i in range(steps):
        sigma = sigmas[i]
        v_c, v_u, wsum = torch.zeros_like(x), torch.zeros_like(x), torch.zeros(FRAMES)
        for tile in tiles:
            w = torch.tensor([min((j + .5) * 2 / WINDOW, 2 - (j + .5) * 2 / WINDOW) for j in range(WINDOW)])
            v_u[tile] += reference_v(ref["unet"], x[tile], sigma, zero_lat, zero_ctx, ref["time_ids"], None) * w.view(-1, 1, 1, 1)
            v_c[tile] += reference_v(ref["unet"], x[tile], sigma, ref["ref_latent"], ref["cond_context"], ref["time_ids"],
                                     ref["pose_features"][tile]) * w.view(-1, 1, 1, 1)
            wsum[tile] += w
        v_c, v_u = v_c / wsum.view(-1, 1, 1, 1), v_u / wsum.view(-1, 1, 1, 1)
        x0 = x0_from_v(x, sigma, v_u + scale * (v_c - v_u))
        x = x + (sigmas[i + 1] - sigma) * (x - x0) / sigma
    return x / 0.18215


def test_sampler_matches_the_official_loop(pipeline):
    import comfy.sample
    sampling, (model, positive, negative, latent, ref) = pipeline
    base = comfy.sample.prepare_noise(latent["samples"], SEED)
    noise = base[:WINDOW].repeat(2, 1, 1, 1)[:FRAMES]               # official: one window of noise, tiled
    with torch.no_grad():
        expected = official_sampling(ref, noise, STEPS)
    with torch.inference_mode():
        got = sampling.run_sampler(model, positive, negative, latent, SEED, STEPS, CFG_MIN, CFG_MAX, "euler", "karras",
                                   1.0, WINDOW, OVERLAP)["samples"]
    assert got.shape == (FRAMES, 4, H // 8, W // 8)
    assert torch.isfinite(got).all()
    err = relative_error(got, expected)
    print(f"sampler vs official loop: relative error {err:.2e}")
    assert err <= 1e-4, err


def test_one_frame_works(pipeline, pack, tmp_path):
    sampling, _ = pipeline
    model, positive, negative, latent, _ = build_tiny_pipeline(pack, tmp_path, 1, H, W)
    with torch.inference_mode():
        out = sampling.run_sampler(model, positive, negative, latent, 0, 2, 3.0, 3.0, "euler", "karras", 1.0, 16, 4)
    assert out["samples"].shape == (1, 4, H // 8, W // 8) and torch.isfinite(out["samples"]).all()


def test_interrupt_stops_within_one_window(pipeline):
    import comfy.model_management as mm
    import comfy.patcher_extension
    sampling, (model, positive, negative, latent, _) = pipeline
    calls = []
    m = model.clone()

    def count_calls(executor, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            mm.interrupt_current_processing(True)   # a user pressing Cancel during the first window
        return executor(*args, **kwargs)

    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", count_calls)
    try:
        with pytest.raises(mm.InterruptProcessingException), torch.inference_mode():
            sampling.run_sampler(m, positive, negative, latent, 0, STEPS, 3.0, 3.0, "euler", "karras", 1.0, WINDOW, OVERLAP)
    finally:
        mm.interrupt_current_processing(False)
    assert len(calls) == 1   # cond+uncond of one window are one batched call; no further window ran


def test_memory_is_reserved_for_one_window(pipeline):
    sampling, (model, *_rest) = pipeline
    guider = sampling.WindowedCFGGuider(model, window=6, overlap=2)
    seen = []
    guider.window_memory(lambda m, shape, conds, model_options=None: seen.append(shape), model, (64, 4, 8, 8), {})
    guider.window_memory(lambda m, shape, conds, model_options=None: seen.append(shape), model, (3, 4, 8, 8), {})
    assert seen == [[6, 4, 8, 8], [3, 4, 8, 8]]
    assert "stableanimator_windows" not in str(model.model_options)   # the model's own options are untouched


def test_guider_and_sampler_nodes_give_the_sampler_result(pipeline):
    """GUIDER + SAMPLER (for SamplerCustomAdvanced) with the same noise and sigmas equal the KSampler-style node."""
    import comfy.sample
    sampling, (model, positive, negative, latent, _) = pipeline
    with torch.inference_mode():
        expected = sampling.run_sampler(model, positive, negative, latent, SEED, STEPS, CFG_MIN, CFG_MAX, "euler",
                                        "karras", 1.0, WINDOW, OVERLAP)["samples"]
        guider = sampling.StableAnimatorGuider.execute(model, positive, negative, CFG_MIN, CFG_MAX, WINDOW, OVERLAP).result[0]
        sampler = sampling.StableAnimatorEulerSampler.execute().result[0]
        noise = periodic_noise(comfy.sample.prepare_noise(latent["samples"], SEED), WINDOW)
        got = guider.sample(noise, latent["samples"], sampler, sampling.sigmas_for(model, "karras", STEPS, 1.0), seed=SEED)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
