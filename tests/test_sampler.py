"""Sampling through ComfyUI's own seams: the official window schedule, the windows as a context handler under
core KSampler and the pack's Sampler, per-frame CFG as a cfg function (ours and core's VideoLinearCFGGuidance),
other samplers' schedules as in KSampler, pre-CFG hooks, interruption, and the errors for latents that do not
match their conditioning. Equivalence is against an independent loop with the official semantics."""
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
        window_indices(20, 16, 16)


FRAMES, H, W = 11, 64, 64
WINDOW, OVERLAP, STEPS, SEED = 6, 2, 3, 7
CFG_MIN, CFG_MAX = 1.5, 3.0


@pytest.fixture(scope="module")
def mods(pack):
    from importlib import import_module
    return (import_module(pack.__name__ + ".nodes.sampling"), import_module(pack.__name__ + ".nodes.context_windows"),
            import_module(pack.__name__ + ".nodes.patching"))


@pytest.fixture(scope="module")
def pipeline(pack, mods, tmp_path_factory):
    return build_tiny_pipeline(pack, tmp_path_factory.mktemp("sampler"), FRAMES, H, W)


@pytest.fixture(scope="module")
def long_pipeline(pack, tmp_path_factory):
    return build_tiny_pipeline(pack, tmp_path_factory.mktemp("sampler24"), 24, H, W)


def windowed(mods, model, window=WINDOW, overlap=OVERLAP):
    m = model.clone()
    mods[1].set_windows(m, window, overlap)
    return m


def karras_sigmas(steps, sigma_min=0.002, sigma_max=700.0, rho=7.0):
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    s = (sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return [*s.tolist(), 0.0]


def official_sampling(ref, noise, steps, window=WINDOW, overlap=OVERLAP, cfg_min=CFG_MIN, cfg_max=CFG_MAX):
    """The official loop: per window two separate UNet calls (uncond without pose), v fused with triangular
    weights, per-frame CFG after fusion, Euler on Karras sigmas, x0 from v."""
    frames = noise.shape[0]
    sigmas = karras_sigmas(steps)
    x = noise.double().float() * math.sqrt(sigmas[0] ** 2 + 1)     # official init_noise_sigma
    tiles = official_tiles(frames, window, overlap) if frames > window else [list(range(frames))]
    scale = torch.linspace(cfg_min, cfg_max, frames).view(-1, 1, 1, 1)
    zero_ctx, zero_lat = torch.zeros_like(ref["cond_context"]), torch.zeros_like(ref["ref_latent"])
    for i in range(steps):
        sigma = sigmas[i]
        v_c, v_u, wsum = torch.zeros_like(x), torch.zeros_like(x), torch.zeros(frames)
        for tile in tiles:
            n = len(tile)
            w = torch.tensor([min((j + .5) * 2 / n, 2 - (j + .5) * 2 / n) for j in range(n)])
            v_u[tile] += reference_v(ref["unet"], x[tile], sigma, zero_lat, zero_ctx, ref["time_ids"], None) * w.view(-1, 1, 1, 1)
            v_c[tile] += reference_v(ref["unet"], x[tile], sigma, ref["ref_latent"], ref["cond_context"], ref["time_ids"],
                                     ref["pose_features"][tile]) * w.view(-1, 1, 1, 1)
            wsum[tile] += w
        v_c, v_u = v_c / wsum.view(-1, 1, 1, 1), v_u / wsum.view(-1, 1, 1, 1)
        x0 = x0_from_v(x, sigma, v_u + scale * (v_c - v_u))
        x = x + (sigmas[i + 1] - sigma) * (x - x0) / sigma
    return x / 0.18215


def check_close(got, expected, label):
    assert got.shape == expected.shape and torch.isfinite(got).all()
    err = relative_error(got, expected)
    print(f"{label}: relative error {err:.2e}")
    assert err <= 1e-4, err


def test_sampler_matches_the_official_loop(mods, pipeline):
    import comfy.sample
    sampling = mods[0]
    model, positive, negative, latent, ref = pipeline
    base = comfy.sample.prepare_noise(latent["samples"], SEED)
    noise = base[:WINDOW].repeat(2, 1, 1, 1)[:FRAMES]               # official: one window of noise, tiled
    with torch.no_grad():
        expected = official_sampling(ref, noise, STEPS)
    with torch.inference_mode():
        got = sampling.run_sampler(windowed(mods, model), positive, negative, latent, SEED, STEPS, CFG_MIN, CFG_MAX,
                                   "euler", "karras", 1.0)["samples"]
    assert got.shape == (FRAMES, 4, H // 8, W // 8)
    check_close(got, expected, "pack sampler vs official loop")


def test_core_ksampler_with_the_packs_windows_matches_the_official_loop(long_pipeline):
    """24 frames, official windows (16, overlap 4) set by Apply; core KSampler's own noise; constant CFG."""
    import comfy.sample
    import nodes
    model, positive, negative, latent, ref = long_pipeline
    noise = comfy.sample.prepare_noise(latent["samples"], SEED)
    with torch.no_grad():
        expected = official_sampling(ref, noise, 2, window=16, overlap=4, cfg_min=CFG_MAX, cfg_max=CFG_MAX)
    with torch.inference_mode():
        got = nodes.common_ksampler(model, SEED, 2, CFG_MAX, "euler", "karras", positive, negative, latent)[0]["samples"]
    check_close(got, expected, "core KSampler + windows (24 frames) vs official loop")


def test_video_linear_cfg_guidance_gives_the_official_ramp(mods, pipeline):
    """Core's VideoLinearCFGGuidance composes with the windows: under core KSampler and the pack's Sampler the
    fused video gets the official per-frame guidance (CFG after fusion)."""
    import comfy.sample
    import nodes
    from comfy_extras.nodes_video_model import VideoLinearCFGGuidance
    sampling = mods[0]
    model, positive, negative, latent, ref = pipeline
    guided = VideoLinearCFGGuidance().patch(windowed(mods, model), CFG_MIN)[0]
    base = comfy.sample.prepare_noise(latent["samples"], SEED)
    with torch.no_grad():
        expected_core = official_sampling(ref, base, STEPS)
        expected_pack = official_sampling(ref, base[:WINDOW].repeat(2, 1, 1, 1)[:FRAMES], STEPS)
    with torch.inference_mode():
        core = nodes.common_ksampler(guided, SEED, STEPS, CFG_MAX, "euler", "karras", positive, negative, latent)[0]
        pack = sampling.run_sampler(guided, positive, negative, latent, SEED, STEPS, CFG_MAX, CFG_MAX, "euler", "karras", 1.0)
    check_close(core["samples"], expected_core, "VideoLinearCFGGuidance -> core KSampler vs official ramp")
    check_close(pack["samples"], expected_pack, "VideoLinearCFGGuidance -> pack sampler vs official ramp")


def test_a_second_cfg_function_with_a_ramp_is_refused(mods, pipeline):
    from comfy_extras.nodes_video_model import VideoLinearCFGGuidance
    model, positive, negative, latent, _ = pipeline
    guided = VideoLinearCFGGuidance().patch(model, 1.0)[0]
    with pytest.raises(Exception, match="already has a CFG function"):
        mods[0].run_sampler(guided, positive, negative, latent, 0, 1, 1.0, 3.0, "euler", "karras", 1.0)


def test_pre_cfg_hook_runs_on_the_fused_video(mods, pipeline):
    model, positive, negative, latent, _ = pipeline
    m = windowed(mods, model)
    seen = []

    def pre_cfg(args):
        seen.append(tuple(args["conds_out"][0].shape))
        return args["conds_out"]

    m.set_model_sampler_pre_cfg_function(pre_cfg)
    with torch.inference_mode():
        mods[0].run_sampler(m, positive, negative, latent, 0, 2, 3.0, 3.0, "euler", "karras", 1.0)
    assert seen == [(FRAMES, 4, H // 8, W // 8)] * 2   # once per step, on all frames after window fusion


@pytest.mark.parametrize("sampler_name", ["dpm_2", "heun"])
def test_other_samplers_get_ksamplers_schedule(mods, pipeline, sampler_name):
    """dpm_2 is one of KSampler's DISCARD_PENULTIMATE_SIGMA_SAMPLERS: the pack's Sampler must sample it on the
    same schedule as core KSampler given the same noise."""
    import comfy.sample
    model, positive, negative, latent, _ = pipeline
    m = windowed(mods, model)
    noise = mods[0].periodic_noise(comfy.sample.prepare_noise(latent["samples"], SEED), WINDOW)
    with torch.inference_mode():
        got = mods[0].run_sampler(m, positive, negative, latent, SEED, 2, 3.0, 3.0, sampler_name, "karras", 1.0)["samples"]
        want = comfy.sample.sample(m, noise, 2, 3.0, sampler_name, "karras", positive, negative, latent["samples"], seed=SEED)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_one_frame_works(mods, pack, tmp_path):
    model, positive, negative, latent, _ = build_tiny_pipeline(pack, tmp_path, 1, H, W)
    with torch.inference_mode():
        out = mods[0].run_sampler(model, positive, negative, latent, 0, 2, 3.0, 3.0, "euler", "karras", 1.0)
    assert out["samples"].shape == (1, 4, H // 8, W // 8) and torch.isfinite(out["samples"]).all()


def test_interrupt_stops_within_one_window(mods, pipeline):
    import comfy.model_management as mm
    import comfy.patcher_extension
    model, positive, negative, latent, _ = pipeline
    calls = []
    m = windowed(mods, model)

    def count_calls(executor, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            mm.interrupt_current_processing(True)   # a user pressing Cancel during the first window
        return executor(*args, **kwargs)

    m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_count", count_calls)
    try:
        with pytest.raises(mm.InterruptProcessingException), torch.inference_mode():
            mods[0].run_sampler(m, positive, negative, latent, 0, STEPS, 3.0, 3.0, "euler", "karras", 1.0)
    finally:
        mm.interrupt_current_processing(False)
    assert len(calls) == 1   # cond+uncond of one window are one batched call; no further window ran


def test_windows_are_set_by_apply_and_sized_for_memory(mods, pipeline):
    import comfy.patcher_extension
    model = pipeline[0]
    handler = model.model_options["context_handler"]
    assert isinstance(handler, mods[1].StableAnimatorWindows)
    assert (handler.context_length, handler.context_overlap) == (16, 4)
    wrappers = model.wrappers[comfy.patcher_extension.WrappersMP.PREPARE_SAMPLING]
    assert "ContextWindows_prepare_sampling" in wrappers   # ComfyUI frees memory for one window, not the video
    with pytest.raises(Exception, match="overlap"):
        mods[1].StableAnimatorWindows(16, 16)


def test_windows_set_before_apply_are_replaced_with_a_warning(mods, pipeline, caplog):
    """Core Context Windows (Manual) placed before Apply: Apply's official windows take their place, and the log
    says so (the other order is refused at run start)."""
    import comfy.context_windows as cw
    model = pipeline[0].clone()
    model.model_options["context_handler"] = cw.IndexListContextHandler(cw.get_matching_context_schedule(
        cw.ContextSchedules.STATIC_STANDARD), cw.get_matching_fuse_method(cw.ContextFuseMethods.PYRAMID), 8, 2)
    with caplog.at_level("WARNING", logger="StableAnimator"):
        mods[1].set_windows(model, 12, 3)
        handler = model.model_options["context_handler"]
        assert isinstance(handler, mods[1].StableAnimatorWindows) and handler.context_length == 12
        assert "replaces them with its own (window 12, overlap 3)" in caplog.text
        caplog.clear()
        mods[1].set_windows(model, 16, 4)    # Apply's own windows replaced by a second Apply: nothing to say
        assert not caplog.records


def test_latent_that_does_not_match_the_conditioning_is_refused(mods, pipeline):
    import nodes
    model, positive, negative, latent, _ = pipeline
    longer = {"samples": torch.zeros(FRAMES + 2, 4, H // 8, W // 8)}
    wider = {"samples": torch.zeros(FRAMES, 4, H // 8, W // 8 + 2)}
    with torch.inference_mode():
        with pytest.raises(Exception, match=f"latent has {FRAMES + 2} frames but the conditioning has {FRAMES}"):
            nodes.common_ksampler(model, 0, 1, 3.0, "euler", "karras", positive, negative, longer)
        with pytest.raises(Exception, match=f"latent is {W + 16}x{H} but the pose frames"):
            mods[0].run_sampler(model, positive, negative, wider, 0, 1, 3.0, 3.0, "euler", "karras", 1.0)


def test_context_windows_that_do_not_slice_the_pose_frames_are_refused(mods, pipeline):
    """A context handler that, like core's in 0.3.75, does not slice model_conds along frames would give every
    window the first frames' poses. That must be an error, not a wrong video. Another node's handler is refused
    at run start (issue 20); the pose frames themselves refuse a handler that passes that check but hands every
    window the whole video's frames (here the pack's windows with core's unsliced conds)."""
    import comfy.context_windows as cw
    import nodes

    class ForeignWindows(cw.IndexListContextHandler):
        def set_step(self, timestep, model_options):
            pass

    windows = mods[1].StableAnimatorWindows

    class UnslicedWindows(windows):
        def get_resized_cond(self, cond_in, x_in, window, device=None):
            return cw.IndexListContextHandler.get_resized_cond(self, cond_in, x_in, window, device)

    model, positive, negative, latent, _ = pipeline
    m = model.clone()
    m.model_options["context_handler"] = ForeignWindows(cw.get_matching_context_schedule("standard_static"),
                                                        cw.get_matching_fuse_method("pyramid"), WINDOW, OVERLAP)
    with torch.inference_mode(), pytest.raises(Exception, match="another node's context windows"):
        nodes.common_ksampler(m, 0, 1, 3.0, "euler", "karras", positive, negative, latent)
    m = model.clone()
    m.model_options["context_handler"] = UnslicedWindows(WINDOW, OVERLAP)
    with torch.inference_mode(), pytest.raises(Exception, match="do not hand StableAnimator the pose frames"):
        nodes.common_ksampler(m, 0, 1, 3.0, "euler", "karras", positive, negative, latent)


def test_conditioning_with_a_model_without_apply_is_refused(mods, pipeline):
    """The check rides on the conditioning (a ComfyUI hook), so core KSampler refuses too."""
    import nodes
    model, positive, negative, latent, _ = pipeline
    unpatched = model.clone()
    unpatched.wrappers = {}
    with torch.inference_mode():
        with pytest.raises(Exception, match="MODEL has no StableAnimator patches"):
            mods[0].run_sampler(unpatched, positive, negative, latent, 0, 1, 3.0, 3.0, "euler", "karras", 1.0)
        with pytest.raises(Exception, match="MODEL has no StableAnimator patches"):
            nodes.common_ksampler(unpatched, 0, 1, 3.0, "euler", "karras", positive, negative, latent)


GUIDANCE_NODES = {
    "RescaleCFG": lambda m: __import__("comfy_extras.nodes_model_advanced", fromlist=["x"]).RescaleCFG().patch(m, 0.7)[0],
    "CFGZeroStar": lambda m: __import__("comfy_extras.nodes_cfg", fromlist=["x"]).CFGZeroStar.execute(m).result[0],
    "APG": lambda m: __import__("comfy_extras.nodes_apg", fromlist=["x"]).APG.execute(m, 1.0, 5.0, -0.5).result[0],
    "PerturbedAttentionGuidance": lambda m: __import__("comfy_extras.nodes_pag", fromlist=["x"]).PerturbedAttentionGuidance.execute(m, 3.0).result[0],
}


@pytest.mark.parametrize("node", sorted(GUIDANCE_NODES))
def test_core_guidance_nodes_compose_with_the_windows(mods, pipeline, node):
    """Each core guidance node on a windowed StableAnimator MODEL runs under the pack's Sampler and changes the
    result (it took part), leaving it finite. RescaleCFG and CFGZeroStar are also checked against an independent
    computation (test_guidance_on_the_fused_video_equals_its_formula); APG (momentum across steps, norm threshold)
    and PAG (a second UNet pass with perturbed self-attention) have no toy-size computation here that would not
    repeat their own code, so for them this check stays "took part, finite"."""
    model, positive, negative, latent, _ = pipeline
    m = windowed(mods, model)
    with torch.inference_mode():
        plain = mods[0].run_sampler(m, positive, negative, latent, 0, 2, 3.0, 3.0, "euler", "karras", 1.0)["samples"]
        guided = mods[0].run_sampler(GUIDANCE_NODES[node](m), positive, negative, latent, 0, 2, 3.0, 3.0, "euler",
                                     "karras", 1.0)["samples"]
    assert torch.isfinite(guided).all()
    assert relative_error(guided, plain) > 1e-4


def rescale_cfg_x0(x, sigma, cond, uncond, scale, phi):
    """RescaleCFG (Lin et al. 2024, "Common Diffusion Noise Schedules...", Alg. 2) on x0 predictions of a
    v-prediction model: to v, CFG, rescale each frame's guided v to the std of its conditional v, blend with phi,
    back to x0."""
    s = sigma.reshape(-1, 1, 1, 1)
    a = (s * s + 1).sqrt()

    def v_of(x0):
        return (x / (s * s + 1) - x0) * a / s

    v_c, v_u = v_of(cond), v_of(uncond)
    v_cfg = v_u + scale * (v_c - v_u)
    dims = (1, 2, 3)
    v_rescaled = v_cfg * v_c.std(dim=dims, keepdim=True) / v_cfg.std(dim=dims, keepdim=True)
    v = phi * v_rescaled + (1 - phi) * v_cfg
    return x / (s * s + 1) - s / a * v


def cfg_zero_star_x0(x, cond, uncond, scale):
    """ComfyUI's CFG-Zero* (Fan et al. 2025, optimised scale) on x0 predictions: the unconditional prediction
    scaled by alpha = <e_c, e_u> / |e_u|^2 per frame, with e = x - x0 the noise predictions, then CFG."""
    e_c, e_u = (x - cond).flatten(1), (x - uncond).flatten(1)
    alpha = ((e_c * e_u).sum(1) / ((e_u * e_u).sum(1) + 1e-8)).reshape(-1, 1, 1, 1)
    return alpha * uncond + scale * (cond - alpha * uncond)


@pytest.mark.parametrize("node", ["RescaleCFG", "CFGZeroStar"])
def test_guidance_on_the_fused_video_equals_its_formula(mods, pipeline, node):
    """One Euler step from sigma 2 to 0 returns the guided x0 (in the latent's units). The fused cond/uncond x0 of
    the plain windowed MODEL are read at that step; the node's guidance computed here from them must be what the
    guided windowed MODEL returns."""
    import comfy.sample
    import comfy.samplers
    model, positive, negative, latent, _ = pipeline
    m = windowed(mods, model)
    seen = {}

    def record(args):
        seen.update({k: args[k].clone() for k in ("input", "sigma", "cond_denoised", "uncond_denoised")})
        return args["denoised"]

    def one_step(mp):
        noise = comfy.sample.prepare_noise(latent["samples"], SEED)
        return comfy.sample.sample_custom(mp, noise, 3.0, comfy.samplers.sampler_object("euler"), torch.tensor([2.0, 0.0]),
                                          positive, negative, latent["samples"], seed=SEED)

    probe = m.clone()
    probe.set_model_sampler_post_cfg_function(record)
    with torch.inference_mode():
        one_step(probe)
        got = one_step(GUIDANCE_NODES[node](m))
    x, c, u = seen["input"], seen["cond_denoised"], seen["uncond_denoised"]
    assert x.shape[0] == FRAMES   # the whole fused video
    if node == "RescaleCFG":
        want = rescale_cfg_x0(x, seen["sigma"], c, u, 3.0, 0.7)
    else:
        want = cfg_zero_star_x0(x, c, u, 3.0)
    plain_cfg = u + 3.0 * (c - u)
    want = model.model.process_latent_out(want)   # the sampler returns latents in the LATENT's units
    plain_cfg = model.model.process_latent_out(plain_cfg)
    print(f"{node}: vs formula {relative_error(got, want):.2e}; formula vs plain CFG {relative_error(want, plain_cfg):.2e}")
    assert relative_error(want, plain_cfg) > 1e-3
    assert relative_error(got, want) <= 1e-5


def test_per_frame_cfg_is_core_video_linear_cfg_guidance(mods):
    """The Sampler's cfg_min..cfg_max ramp is the formula of core's VideoLinearCFGGuidance (min_cfg at frame 0,
    the sampler's cfg at the last frame)."""
    import comfy.model_patcher
    from comfy_extras.nodes_video_model import VideoLinearCFGGuidance
    gen = torch.Generator().manual_seed(0)
    args = {"cond": torch.randn(9, 4, 3, 3, generator=gen), "uncond": torch.randn(9, 4, 3, 3, generator=gen),
            "cond_scale": 3.5}
    holder = comfy.model_patcher.ModelPatcher(torch.nn.Linear(1, 1), torch.device("cpu"), torch.device("cpu"))
    core = VideoLinearCFGGuidance().patch(holder, 1.25)[0].model_options["sampler_cfg_function"]
    torch.testing.assert_close(mods[0].per_frame_cfg(1.25)(args), core(args), rtol=1e-6, atol=1e-6)


def test_animator_noise_under_sampler_custom_advanced_equals_the_sampler(mods, pipeline):
    """SamplerCustomAdvanced + CFGGuider + Animator Noise gives what the Animator Sampler gives (same seed,
    steps, euler, karras, constant CFG): the official periodic noise is available to core's custom sampling."""
    from comfy_extras import nodes_custom_sampler as custom
    model, positive, negative, latent, _ = pipeline
    m = windowed(mods, model)
    with torch.inference_mode():
        want = mods[0].run_sampler(m, positive, negative, latent, SEED, 2, 3.0, 3.0, "euler", "karras", 1.0)["samples"]
        noise = mods[0].StableAnimatorNoise.execute(SEED, WINDOW).result[0]
        guider = custom.CFGGuider.execute(m, positive, negative, 3.0).result[0]
        sampler = custom.KSamplerSelect.execute("euler").result[0]
        sigmas = custom.BasicScheduler.execute(m, "karras", 2, 1.0).result[0]
        got = custom.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, latent).result[0]["samples"]
        generated = noise.generate_noise(latent)
    assert torch.equal(generated[WINDOW:2 * WINDOW][:FRAMES - WINDOW], generated[:FRAMES - WINDOW])   # periodic
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


def fixed_set_step(self, timestep, model_options):
    """set_step as newer ComfyUI has it (written here): the first frame's timestep, the last step kept between
    schedule points."""
    matches = torch.isclose(model_options["transformer_options"]["sample_sigmas"], timestep[0], rtol=1e-4).nonzero()
    if len(matches):
        self._step = int(matches[0])


def test_on_a_host_without_the_context_window_bugs_core_code_runs(mods, pipeline, monkeypatch):
    """Simulates a fixed ComfyUI: core's set_step and get_resized_cond replaced by versions without the two
    0.3.75 bugs. The pack must then use core's code (its workarounds never run) and still match the official loop."""
    import comfy.context_windows as cw
    import comfy.sample
    cwmod = mods[1]
    core_resize = cw.IndexListContextHandler.get_resized_cond
    calls = {"core_step": 0, "core_resize": 0, "pack_step": 0, "pack_slice": 0}

    def fixed_get_resized_cond(self, cond_in, x_in, window, device=None):
        calls["core_resize"] += 1
        out = core_resize(self, cond_in, x_in, window, device)
        for cond in out or []:   # dim-0 model_conds sliced, as newer core does
            cond["model_conds"] = {k: v._copy_with(window.get_tensor(v.cond, device))
                                   if getattr(v, "cond", None) is not None and isinstance(v.cond, torch.Tensor)
                                   and v.cond.ndim > 0 and v.cond.size(0) == x_in.size(0) else v
                                   for k, v in cond.get("model_conds", {}).items()}
        return out

    def counting_set_step(self, timestep, model_options):
        calls["core_step"] += 1
        fixed_set_step(self, timestep, model_options)

    def counted(name, fn):
        def wrapper(*a, **k):
            calls[name] += 1
            return fn(*a, **k)
        return wrapper

    assert not cwmod.core_set_step_handles_video() and not cwmod.core_slices_frame_conds()   # 0.3.75: the bugs
    monkeypatch.setattr(cw.IndexListContextHandler, "set_step", counting_set_step)
    monkeypatch.setattr(cw.IndexListContextHandler, "get_resized_cond", fixed_get_resized_cond)
    monkeypatch.setattr(cwmod, "schedule_step_of", counted("pack_step", cwmod.schedule_step_of))
    monkeypatch.setattr(cwmod, "slice_frame_conds", counted("pack_slice", cwmod.slice_frame_conds))
    assert cwmod.core_set_step_handles_video() and cwmod.core_slices_frame_conds()   # the probes see the fix
    model, positive, negative, latent, ref = pipeline
    base = comfy.sample.prepare_noise(latent["samples"], SEED)
    with torch.no_grad():
        expected = official_sampling(ref, base[:WINDOW].repeat(2, 1, 1, 1)[:FRAMES], STEPS)
    calls.update(core_step=0, core_resize=0)
    with torch.inference_mode():
        got = mods[0].run_sampler(windowed(mods, model), positive, negative, latent, SEED, STEPS, CFG_MIN, CFG_MAX,
                                  "euler", "karras", 1.0)["samples"]
    print(calls)
    assert calls["pack_step"] == 0 and calls["pack_slice"] == 0
    assert calls["core_step"] == STEPS and calls["core_resize"] > 0
    check_close(got, expected, "pack sampler on a fixed host vs official loop")


def test_nan_latent_is_refused_by_sampler_and_decode(mods, pipeline):
    model, positive, negative, latent, _ = pipeline
    bad = {"samples": latent["samples"].clone()}
    bad["samples"][1, 0, 0, 0] = float("nan")
    with torch.inference_mode():
        with pytest.raises(Exception, match="input 'latent' has NaN or infinite values"):
            mods[0].StableAnimatorSampler.execute(model, positive, negative, bad, 0, 1, 3.0, 3.0, "euler", "karras", 1.0)
        with pytest.raises(Exception, match="input 'latent' has NaN or infinite values"):
            mods[0].StableAnimatorDecode.execute(None, bad, 4)
