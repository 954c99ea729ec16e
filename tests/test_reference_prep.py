"""The reference as the official pipeline prepares it, number for number: CLIP's input squashed to 224x224 with
diffusers' anti-aliased resize (the function the official pipeline calls), noise augmentation in [-1, 1] units,
and the VAE input at width x height, not height x width. diffusers is a test-only dependency."""
import pytest
import torch

from fixtures.diffusers_reference import official_clip_input
from stableanimator_core.model.reference_prep import clip_input, noised_vae_input


@pytest.mark.parametrize("height,width", [(1024, 576), (576, 1024), (512, 512), (300, 97), (100, 60), (224, 224)])
def test_clip_squash_matches_diffusers(height, width):
    g = torch.Generator().manual_seed(height * 7 + width)
    image = torch.rand(1, height, width, 3, generator=g)
    image[:, : height // 3] = 1.0   # a hard edge: bicubic overshoots, the clamp must be the only difference
    got = clip_input(image)
    want = official_clip_input(image)
    assert got.shape == (1, 224, 224, 3)
    torch.testing.assert_close(got, want.clamp(0, 1), rtol=0, atol=2e-6)
    # the squash keeps no aspect ratio: a portrait's top third stays the top third
    assert got[0, :70].min() > 0.99 and got[0, 80:].mean() < 0.6


def test_noise_augmentation_is_in_minus_one_to_one_units():
    """Official: image*2-1 + strength * N(0, 1). In ComfyUI's [0, 1] pixels that is strength/2 * N(0, 1):
    ComfyUI's own SVD node uses strength * N in [0, 1] (twice as much), which this test would reject."""
    image = torch.rand(1, 128, 64, 3, generator=torch.Generator().manual_seed(1))
    strength = 0.02
    out = noised_vae_input(image, strength, torch.Generator().manual_seed(5))
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close((out * 2 - 1) - (image * 2 - 1), strength * noise, rtol=0, atol=1e-6)
    ratio = float(((out - image) * 2).std() / strength)   # 24576 samples: std error about 0.5 %
    assert 0.97 < ratio < 1.03, ratio
    assert out.max() > 1 or out.min() < 0 or strength == 0   # not clamped, as in the official code
    assert noised_vae_input(image, 0.0) is image


class CaptureClip:
    def __init__(self):
        self.seen = None

    def encode_image(self, image, crop=True):
        assert not crop
        self.seen = image
        return {"image_embeds": torch.randn(1, 1024, generator=torch.Generator().manual_seed(0))}


class CaptureVAE:
    def __init__(self):
        self.seen = None

    def encode(self, pixels):
        self.seen = pixels
        return torch.zeros(1, 4, pixels.shape[1] // 8, pixels.shape[2] // 8)


class Embed:
    embedding = torch.randn(1, 512, generator=torch.Generator().manual_seed(3)) * 10


def test_conditioning_node_prepares_the_reference_officially(pack, tmp_path):
    """Through the conditioning node at a portrait size: CLIP gets the diffusers squash of the reference, the VAE
    gets the Lanczos resize at width x height plus the official noise, the latent is frames x 4 x H/8 x W/8."""
    from importlib import import_module
    from fixtures.official_weights import write_official_set
    from stableanimator_core.image_ops import resize_lanczos
    loading = import_module(pack.__name__ + ".nodes.loading")
    conditioning = import_module(pack.__name__ + ".nodes.conditioning")
    write_official_set(tmp_path)
    _, animator = loading.load_animator(str(tmp_path / "unet.pth"), str(tmp_path / "pose_net.pth"),
                                        str(tmp_path / "face_encoder.pth"), "fp32")
    reference = torch.rand(1, 300, 200, 3, generator=torch.Generator().manual_seed(4))
    poses = torch.rand(2, 128, 64, 3)   # pose frames come at the video size (Render Poses / Resize Images)
    clip, vae = CaptureClip(), CaptureVAE()
    width, height, aug, seed = 64, 128, 0.05, 11
    positive, negative, latent = conditioning.build_conditioning(clip, vae, animator, Embed(), reference, poses, width,
                                                                 height, 0, 7, 127, aug, seed)
    torch.testing.assert_close(clip.seen, official_clip_input(reference).clamp(0, 1), rtol=0, atol=2e-6)
    assert vae.seen.shape == (1, height, width, 3)
    clean = resize_lanczos(reference, width, height)
    noise = torch.randn((1, height, width, 3), generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(vae.seen * 2 - 1, clean * 2 - 1 + aug * noise, rtol=0, atol=1e-5)
    assert latent["samples"].shape == (2, 4, height // 8, width // 8)
    assert positive[0][1]["model_conds"]["sa_pose"].cond.shape == (2, 3, height, width)
    assert positive[0][1]["augmentation_level"] == aug
