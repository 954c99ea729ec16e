"""Preparing the reference image and pose frames the way the official pipeline does."""
import torch
import torch.nn.functional as F

CLIP_SIZE = 224


def gaussian_kernel1d(size: int, sigma: float, dtype=torch.float32) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype) - size // 2
    k = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return k / k.sum()


def clip_input(images: torch.Tensor, size: int = CLIP_SIZE) -> torch.Tensor:
    """(B,H,W,3) in [0,1] -> (B,size,size,3): the official squash to 224x224 (no crop) with its anti-aliasing,
    a Gaussian blur of sigma (scale-1)/2 per axis followed by bicubic interpolation with aligned corners."""
    x = images.movedim(-1, 1).float()
    h, w = x.shape[-2:]
    sigmas = [max((h / size - 1) / 2, 0.001), max((w / size - 1) / 2, 0.001)]
    ks = [int(max(4 * s, 3)) for s in sigmas]
    ks = [k + 1 if k % 2 == 0 else k for k in ks]
    c = x.shape[1]
    ky = gaussian_kernel1d(ks[0], sigmas[0]).to(x).view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kx = gaussian_kernel1d(ks[1], sigmas[1]).to(x).view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    x = F.pad(x, (ks[1] // 2, ks[1] // 2, ks[0] // 2, ks[0] // 2), mode="reflect")
    x = F.conv2d(F.conv2d(x, ky, groups=c), kx, groups=c)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=True)
    return x.clamp(0, 1).movedim(1, -1)


def noised_vae_input(images: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add the official noise augmentation to (B,H,W,3) [0,1] images. The official code adds strength*N(0,1) in
    [-1,1] space, which is strength/2 in ComfyUI's [0,1] pixel space; nothing is clamped, as there."""
    if strength == 0:
        return images
    noise = torch.randn(images.shape, generator=generator, dtype=torch.float32).to(images)
    return images + noise * (strength / 2)


def pose_tensor(images: torch.Tensor) -> torch.Tensor:
    """(F,H,W,3) [0,1] skeleton frames -> (F,3,H,W) in [-1,1], PoseNet's input."""
    return images.movedim(-1, 1) * 2 - 1
