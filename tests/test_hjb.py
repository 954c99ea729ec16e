"""HJB face optimisation building blocks: stableanimator_core/sampling/hjb.py and nodes/hjb.py.

Small models: a tiny random IResNet (its feature BN centred so that cosines spread) and ComfyUI's SVD
temporal VAE, full size for the decode-equivalence check and a narrow comfy VideoDecoder for the
optimisation tests (CPU time)."""
import importlib

import pytest
import torch

from fixtures import hjb_oracle
from fixtures.hjb_models import centred_arcface as _centred_arcface, svd_vae as _svd_vae

LATENT_SCALE = 0.18215


@pytest.fixture(scope="module")
def mods(pack):
    hjb = importlib.import_module(pack.__name__ + ".stableanimator_core.sampling.hjb")
    support = importlib.import_module(pack.__name__ + ".nodes.hjb")
    return hjb, support


@pytest.fixture(scope="module")
def small_vae(comfy_inprocess):
    return _svd_vae(small=True, seed=1)


@pytest.fixture(scope="module")
def arcface():
    return _centred_arcface()


FRAMES, LAT = 3, 12   # 3 frames of 96x96 pixels
BOXES = torch.tensor([[32, 30, 63, 61], [34, 31, 65, 62], [36, 32, 67, 63]])  # inclusive pixels


@pytest.fixture(scope="module")
def scene(mods, arcface):
    hjb, _ = mods
    gen = torch.Generator().manual_seed(7)
    x0 = torch.randn(FRAMES, 4, LAT, LAT, generator=gen) * LATENT_SCALE * 4
    ref_image = torch.rand(1, 3, 80, 72, generator=gen) * 2 - 1
    ref = hjb.reference_identity(arcface, ref_image, torch.tensor([8, 10, 60, 70]))
    return x0, ref


def make_decode(support, vae, checkpoint_blocks=True):
    """The differentiable decode callable the HJB patch uses, on a fresh decoder copy (a ModelPatcher)."""
    return support.decode_function(support.decoder_copy(vae, checkpoint_blocks=checkpoint_blocks))


def _frame_cosines(hjb, decode, arcface, z, ref):
    """Per-frame cos(ArcFace(face crop), e_ref) of the fully decoded scaled latents z."""
    with torch.no_grad():
        pixels = ((decode(z / LATENT_SCALE) + 1) / 2).clamp(0, 1) * 2 - 1
        return 1 - hjb._identity_terms(arcface, pixels, BOXES, ref)


@pytest.fixture(scope="module")
def refined(mods, small_vae, arcface, scene):
    """One refined step (step 0, 5 iterations, region decoding) run as the sampler runs it: in inference mode."""
    hjb, support = mods
    x0, ref = scene
    decode = make_decode(support, small_vae)
    settings = hjb.HJBSettings(iterations=5, context=2, chunk=2)
    with torch.inference_mode():
        x0_inf = x0.clone()       # an inference tensor, like ComfyUI's denoised
        ref_inf = ref.clone()
        out, losses = hjb.refine_x0(x0_inf, 0, 25, decode, arcface, ref_inf, BOXES, settings)
    return decode, out, losses


def test_decode_callable_matches_vae_decode(mods, comfy_inprocess):
    _, support = mods
    gen = torch.Generator().manual_seed(0)
    for small in (False, True):   # the full-size SVD VAE and the narrow test decoder
        vae = _svd_vae(small=small, seed=2)
        z = torch.randn(3, 4, 8, 8, generator=gen)
        with torch.inference_mode():
            want = vae.decode(z)                        # ComfyUI: (N,H,W,3) in [0,1]
            patcher = support.decoder_copy(vae)
            assert patcher.load_device == torch.device(vae.device)   # model management moves it for sampling
            decode = support.decode_function(patcher)
            got = decode(z)                              # raw [-1,1] (N,3,H,W)
        assert got.shape == (3, 3, 64, 64)
        torch.testing.assert_close(((got + 1) / 2).clamp(0, 1).movedim(1, -1), want, rtol=0, atol=2e-5)
        net = decode.module
        assert not any(p.is_inference() or p.requires_grad for p in net.parameters())
        assert all(p.device == vae.patcher.offload_device and p.dtype == vae.vae_dtype for p in net.parameters())


def test_checkpointed_decoder_gradient_equals_plain(mods, small_vae):
    _, support = mods
    z = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(4))
    grads = []
    for ckpt in (True, False):
        decode = make_decode(support, small_vae, ckpt)
        with torch.inference_mode(), torch.inference_mode(False), torch.enable_grad():
            leaf = z.clone().requires_grad_(True)
            (decode(leaf) ** 2).mean().backward()
            grads.append(leaf.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_activation_count_is_what_checkpointing_saves_and_grows_with_the_tile(mods, small_vae):
    """The measure the HJB patch uses to choose checkpointing: keeping every block's activations costs several
    times what checkpointing keeps (only block inputs), and the count is the same per pixel at every tile size
    (memory that dropped tensors free and later ones reuse is counted again, not merged)."""
    _, support = mods
    net = make_decode(support, small_vae).module
    gen = torch.Generator().manual_seed(3)
    per_pixel = {}
    for on in (True, False):
        support.set_checkpointing(net, on)
        per_pixel[on] = [support.saved_activation_bytes(net, torch.randn(2, 4, side, side, generator=gen)) / side ** 2
                         for side in (4, 8, 16)]
    print(f"\nsaved bytes per latent cell, 2 frames, 4/8/16 cells square: kept {per_pixel[False]}, "
          f"checkpointed {per_pixel[True]}")
    for counts in per_pixel.values():
        assert max(counts) < 1.02 * min(counts)
    assert per_pixel[False][0] > 3 * per_pixel[True][0] > 0
    assert not any(p.requires_grad for p in net.parameters())   # measuring leaves the copy as it was


def test_identity_loss_falls(refined):
    _, _, losses = refined
    print("\nHJB losses per iteration:", [round(v, 4) for v in losses])
    assert len(losses) == 5
    assert losses[-1] < losses[0] - 0.01
    assert all(b < a for a, b in zip(losses, losses[1:]))


def test_refined_x0_is_closer_to_reference(mods, refined, arcface, scene):
    hjb, _ = mods
    decode, out, _ = refined
    x0, ref = scene
    before = _frame_cosines(hjb, decode, arcface, x0, ref)
    after = _frame_cosines(hjb, decode, arcface, out, ref)
    print("\ncos before", before.tolist(), "after", after.tolist())
    assert bool((after > before).all())
    assert float(after.mean() - before.mean()) > 0.01


def test_runs_in_inference_mode_without_weight_gradients(refined, arcface, scene):
    decode, out, _ = refined
    x0, _ = scene
    assert out.shape == x0.shape and out.dtype == x0.dtype and out.device == x0.device
    assert not out.requires_grad and torch.isfinite(out).all()
    assert float((out - x0).abs().max()) > 0
    for p in list(decode.module.parameters()) + list(arcface.parameters()):
        assert p.grad is None and not p.requires_grad


def test_region_only_changes_the_face_windows(mods, refined, scene):
    hjb, _ = mods
    _, out, _ = refined
    x0, _ = scene
    settings = hjb.HJBSettings(iterations=5, context=2, chunk=2)
    inside = torch.zeros_like(x0, dtype=torch.bool)
    for w in hjb.decode_windows(BOXES, FRAMES, (LAT, LAT), settings):
        inside[w.start:w.stop, :, w.y0:w.y1, w.x0:w.x1] = True
    assert bool((out - x0)[~inside].abs().max() == 0)
    assert float((out - x0)[inside].abs().max()) > 0


def test_region_decoding_is_close_to_full_frame(mods, small_vae, arcface, scene):
    hjb, support = mods
    x0, ref = scene
    decode = make_decode(support, small_vae)
    region = hjb.HJBSettings(context=2, chunk=2)
    full = hjb.HJBSettings(context=2, chunk=2, full_frame=True)
    with torch.inference_mode(False), torch.enable_grad():
        loss_r, grad_r = hjb.face_loss_grad(x0, decode, arcface, ref, BOXES, region)
        loss_f, grad_f = hjb.face_loss_grad(x0, decode, arcface, ref, BOXES, full)
    with torch.no_grad():
        px_full = ((decode(x0[:2] / LATENT_SCALE) + 1) / 2).clamp(0, 1) * 2 - 1   # chunk 0 as one clip
        w = hjb.decode_windows(BOXES, FRAMES, (LAT, LAT), region)[0]
        px_reg = ((decode(x0[:2, :, w.y0:w.y1, w.x0:w.x1] / LATENT_SCALE) + 1) / 2).clamp(0, 1) * 2 - 1
        off = torch.tensor([w.x0, w.y0, w.x0, w.y0]) * 8
        from_full = hjb.crop_faces(px_full, BOXES[:2])
        from_region = hjb.crop_faces(px_reg, BOXES[:2] - off)
    crop_err = (from_full - from_region).abs()
    face = torch.zeros_like(x0, dtype=torch.bool)   # the latent cells under the face boxes
    for f, (bx0, by0, bx1, by1) in enumerate((BOXES // 8).tolist()):
        face[f, :, by0:by1 + 1, bx0:bx1 + 1] = True
    gr, gf = grad_r[face], grad_f[face]
    grad_cos = float(torch.nn.functional.cosine_similarity(gr, gf, dim=0))
    sign_agree = float((gr.sign() == gf.sign()).float().mean())
    outside = float(grad_f[~face].abs().sum() / grad_f.abs().sum())
    print(f"\nregion window {w}; crop |err| mean {crop_err.mean():.4f} max {crop_err.max():.4f} (pixels in [-1,1]); "
          f"loss region {loss_r:.5f} full {loss_f:.5f}; face-cell grad cosine {grad_cos:.4f}, sign agreement "
          f"{sign_agree:.3f}; share of full-frame |grad| outside the face cells {outside:.3f}")
    assert float(crop_err.mean()) < 0.05 and float(crop_err.max()) < 0.25
    assert abs(loss_r - loss_f) < 0.1 * loss_f
    assert grad_cos > 0.8
    # with the window covering the whole frame the two paths are the same computation
    wide = hjb.HJBSettings(context=LAT, chunk=2)
    with torch.inference_mode(False), torch.enable_grad():
        loss_w, grad_w = hjb.face_loss_grad(x0, decode, arcface, ref, BOXES, wide)
    assert abs(loss_w - loss_f) < 1e-5
    torch.testing.assert_close(grad_w, grad_f, rtol=1e-4, atol=1e-8)


def test_should_stop_is_honoured_between_iterations(mods, small_vae, arcface, scene):
    hjb, support = mods
    x0, ref = scene
    decode = make_decode(support, small_vae)
    calls = []

    def stop_after_one():
        calls.append(1)
        return len(calls) > 1

    settings = hjb.HJBSettings(iterations=3, context=1, chunk=3)
    with torch.inference_mode():
        out, losses = hjb.refine_x0(x0, 3, 25, decode, arcface, ref, BOXES, settings, should_stop=stop_after_one)
    assert len(losses) == 1 and len(calls) == 2
    assert float((out - x0).abs().max()) > 0

    class Interrupted(Exception):
        pass

    def interrupt():   # ComfyUI's throw_exception_if_processing_interrupted raises
        raise Interrupted()

    with pytest.raises(Interrupted), torch.inference_mode():
        hjb.refine_x0(x0, 3, 25, decode, arcface, ref, BOXES, settings, should_stop=interrupt)


def test_steps_outside_the_range_are_untouched_and_lr_schedule(mods, arcface, scene):
    hjb, _ = mods
    x0, ref = scene
    settings = hjb.HJBSettings()
    out, losses = hjb.refine_x0(x0, 21, 25, lambda z: 1 / 0, arcface, ref, BOXES, settings)
    assert out is x0 and losses == []
    assert settings.learning_rate(0, 25) == pytest.approx(0.1)
    assert settings.learning_rate(10, 25) == pytest.approx(0.06)
    assert settings.learning_rate(20, 25) == pytest.approx(0.02)


def test_refine_x0_at_a_later_step_equals_the_independent_official_hjb(mods, small_vae, arcface, scene):
    """Step 10 of 25 (learning rate 0.06), whole frames in clips of 2, 3 Adam iterations, against
    fixtures/hjb_oracle (the official algorithm, none of the pack's HJB code). The decoder's output is
    amplified so that a good share of the face pixels leaves [-1, 1]: the postprocess clamp matters."""
    hjb, _ = mods
    x0, ref = scene
    net = hjb_oracle.plain_small_decoder(small_vae)
    with torch.no_grad():
        crops = torch.cat([hjb_oracle.face_crop(f, b) for f, b in zip(net(x0 / LATENT_SCALE), BOXES.tolist())])
        offset, gain = float(crops.mean()), float(1.0 / crops.std())   # about a third of the pixels beyond +-1

    def decode(z):
        return (net(z) - offset) * gain

    with torch.no_grad():
        crops = torch.cat([hjb_oracle.face_crop(f, b) for f, b in zip(decode(x0 / LATENT_SCALE), BOXES.tolist())])
    saturated = float((crops.abs() > 1).float().mean())
    assert 0.1 < saturated < 0.9, saturated
    settings = hjb.HJBSettings(iterations=3, chunk=2, full_frame=True)
    with torch.inference_mode():
        got, _ = hjb.refine_x0(x0.clone(), 10, 25, decode, arcface, ref.clone(), BOXES, settings)
    want = hjb_oracle.refine(x0, 10, 25, decode, arcface, ref, BOXES.tolist(), lr0=0.1, iterations=3, chunk=2)
    effect, apart = (want - x0).norm(), (got - want).norm()
    print(f"\nstep 10/25: {saturated:.0%} of face pixels clamped; pack vs oracle {apart / effect:.2e} of the change")
    assert apart < 1e-3 * effect, float(apart / effect)


def test_decoded_pixels_are_clamped_as_the_official_postprocess(mods):
    hjb, _ = mods
    raw = torch.linspace(-3, 3, 2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    got = hjb._decode_pixels(lambda z: raw, torch.zeros(2, 4, 1, 1))
    torch.testing.assert_close(got, ((raw + 1) / 2).clamp(0, 1) * 2 - 1, rtol=0, atol=0)
    assert float(got.min()) == -1.0 and float(got.max()) == 1.0


def test_schedule_step_maps_a_sigma_to_its_index_in_the_schedule(mods):
    hjb, _ = mods
    sigmas = torch.tensor([14.61, 5.0, 1.0, 0.0292, 0.0])
    assert hjb.schedule_step(sigmas, torch.tensor([14.61])) == 0
    assert hjb.schedule_step(sigmas, torch.full((7,), 5.0)) == 1          # per-frame sigma of a video
    assert hjb.schedule_step(sigmas, 1.0 * (1 + 1e-6)) == 2               # float rounding of the sampler
    assert hjb.schedule_step(sigmas, torch.tensor([0.0292])) == 3         # the last model evaluation
    assert hjb.schedule_step(sigmas, torch.tensor([2.236])) is None       # a second-order sampler's midpoint
    assert hjb.schedule_step(None, torch.tensor([5.0])) is None           # no schedule known
    assert hjb.schedule_step(sigmas.double(), torch.tensor([5.0], dtype=torch.float16)) == 1


def test_decode_windows_geometry(mods):
    hjb, _ = mods
    boxes = torch.tensor([[100, 100, 163, 163], [120, 90, 180, 150], [0, 0, 20, 20], [500, 500, 600, 600],
                          [8, 16, 15, 23]])
    s = hjb.HJBSettings(chunk=2, context=8)
    wins = hjb.decode_windows(boxes, 5, (64, 64), s)
    assert [(w.start, w.stop) for w in wins] == [(0, 2), (2, 4), (4, 5)]
    assert (wins[0].x0, wins[0].x1, wins[0].y0, wins[0].y1) == (12 - 8, 22 + 9, 11 - 8, 20 + 9)  # union + margin
    assert (wins[1].x0, wins[1].y0, wins[1].x1, wins[1].y1) == (0, 0, 64, 64)   # clamped to the frame
    assert (wins[2].x0, wins[2].y0, wins[2].x1, wins[2].y1) == (0, 0, 10, 11)
    full = hjb.decode_windows(boxes, 5, (64, 64), hjb.HJBSettings(chunk=4, full_frame=True))
    assert [(w.start, w.stop, w.y0, w.y1, w.x0, w.x1) for w in full] == [(0, 4, 0, 64, 0, 64), (4, 5, 0, 64, 0, 64)]


def test_reference_identity_from_inputs(mods, pack, arcface):
    import comfy.model_patcher
    hjb, support = mods
    face_analysis = importlib.import_module(pack.__name__ + ".stableanimator_core.face.face_analysis")
    with torch.inference_mode():   # a patcher whose weights were moved inside a node: inference tensors
        net = _centred_arcface()
        net.to(torch.float64).to(torch.float32)
        assert any(p.is_inference() for p in net.parameters())
        patcher = comfy.model_patcher.ModelPatcher(net, load_device=torch.device("cpu"),
                                                   offload_device=torch.device("cpu"))
    image = torch.rand(1, 90, 70, 3, generator=torch.Generator().manual_seed(5))
    embed = face_analysis.FaceEmbedding(embedding=torch.zeros(1, 512), boxes=torch.tensor([[10.2, 12.7, 50.0, 61.3]]),
                                        landmarks=torch.zeros(1, 5, 2), found=torch.tensor([True]), image_size=(90, 70))
    with torch.inference_mode():
        got = support.reference_identity_from_inputs(support.autograd_ready(patcher.model), image, embed)
    # insightface box -> inclusive pixels: x 10..49, y 12..61
    want = hjb.reference_identity(arcface, image.movedim(-1, 1) * 2 - 1, torch.tensor([10, 12, 49, 61]))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got.shape == (1, 512)
    assert not any(p.is_inference() for p in patcher.model.parameters())
    with torch.inference_mode(), torch.inference_mode(False), torch.enable_grad():
        x = torch.rand(1, 3, 112, 112, requires_grad=True)
        patcher.model(x).sum().backward()
    assert x.grad is not None
    embed.found[0] = False
    with pytest.raises(Exception, match="no face was found"):
        support.reference_identity_from_inputs(patcher.model, image, embed)


def test_reference_box_of_another_shape_warns(mods, pack, caplog):
    """Face Embed's box is in the image it saw: a reference of the same shape at another size is rescaled
    silently; one of another shape (a cropped or padded copy) is rescaled as if stretched, and the log says to
    link the photo Face Embed saw."""
    _, support = mods
    face_analysis = importlib.import_module(pack.__name__ + ".stableanimator_core.face.face_analysis")
    embed = face_analysis.FaceEmbedding(embedding=torch.zeros(1, 512), boxes=torch.tensor([[40.0, 20.0, 80.0, 60.0]]),
                                        landmarks=torch.zeros(1, 5, 2), found=torch.tensor([True]), image_size=(100, 120))
    with caplog.at_level("WARNING", logger="StableAnimator"):
        assert support.reference_box(torch.zeros(1, 50, 60, 3), embed).tolist() == [20, 10, 39, 29]
        assert not caplog.records
        assert support.reference_box(torch.zeros(1, 64, 40, 3), embed).tolist() == [13, 12, 26, 38]
    assert "Link the photo Face Embed saw to HJB's reference" in caplog.text
