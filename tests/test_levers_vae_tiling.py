"""Decode Video's spatially tiled mode on SVD's temporal VAE: each tile decodes all frames of a clip together
(the temporal decoder mixes them), tiles overlap and are blended by core's tiler. Measured against the untiled
decode of the same clip on the narrow random test decoder; the error is relative to the frames' own variation
(random weights give nearly flat images, whose absolute errors say little). Full-size seam figures are in
BENCHMARKS.md (benchmarks/levers.py)."""
import pytest
import torch

FRAMES, CHUNK = 4, 4
LATENT = (FRAMES, 4, 16, 24)       # 128 x 192 pixels
TILE, OVERLAP = 64, 24
# measured on this decoder: 64 px tiles, 24 px overlap 0.243; the same without overlap 0.325; decoding one frame at a time (the
# clip split, as core's decode_tiled does) 0.477. Deterministic (fixed seeds, fp32 CPU).
TOLERANCE = 0.28


def relative(got, want):
    return ((got - want).norm() / (want - want.mean()).norm()).item()


@pytest.fixture(scope="module")
def setup(pack):
    from importlib import import_module
    from fixtures.hjb_models import svd_vae
    tiling = import_module(pack.__name__ + ".nodes.vae_tiling")
    sampling = import_module(pack.__name__ + ".nodes.sampling")
    vae = svd_vae(small=True, seed=1)
    latent = torch.randn(LATENT, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        whole = tiling.decode_video(vae, latent, CHUNK)
    return tiling, sampling, vae, latent, whole


def test_tiled_decode_stays_close_to_the_whole_frame_decode(setup):
    tiling, sampling, vae, latent, whole = setup
    with torch.inference_mode():
        tiled = sampling.StableAnimatorDecode.execute(vae, {"samples": latent}, CHUNK, TILE, OVERLAP).result[0]
        covering = tiling.decode_video(vae, latent, CHUNK, 256, 64)   # one tile covers the frame: the plain decode
    assert tiled.shape == whole.shape == (FRAMES, 128, 192, 3)
    err = relative(tiled, whole)
    print(f"tiled {TILE}px/{OVERLAP}px vs whole frame: relative error {err:.3f}, max abs {(tiled - whole).abs().max():.2e}")
    assert err <= TOLERANCE, err
    assert torch.equal(covering, whole)


def test_decode_node_defaults_are_the_untiled_decode(setup):
    tiling, sampling, vae, latent, whole = setup
    with torch.inference_mode():
        got = sampling.StableAnimatorDecode.execute(vae, {"samples": latent}, CHUNK).result[0]
    assert torch.equal(got, whole)


@pytest.mark.parametrize("tile,overlap,match", [(32, 8, "at least 64"), (128, 64, "less than half")])
def test_bad_tiles_are_refused(setup, tile, overlap, match):
    _, sampling, vae, latent, _ = setup
    with pytest.raises(Exception, match=match):
        sampling.StableAnimatorDecode.validate_inputs(vae=None, latent=None, chunk=4, tile=tile, tile_overlap=overlap)
    with pytest.raises(Exception, match=match):
        sampling.StableAnimatorDecode.execute(vae, {"samples": latent}, CHUNK, tile, overlap)
