"""Small image helpers shared by the nodes: channel normalisation and the official resize."""
import torch
import torch.nn.functional as F

from .errors import StableAnimatorError


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """ComfyUI IMAGE (B,H,W,C) with C in {1,2,3,4} -> (B,H,W,3) RGB in [0,1].

    Grayscale is repeated to three channels; an alpha channel is dropped (composited on black would
    darken faces and skeletons alike, so we simply ignore it).
    """
    if images.ndim == 3:
        images = images.unsqueeze(0)
    if images.ndim != 4:
        raise StableAnimatorError(f"expected an IMAGE batch of shape (frames, height, width, channels), got {tuple(images.shape)}")
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise StableAnimatorError(f"the image batch is empty ({tuple(images.shape)}): connect at least one image")
    c = images.shape[-1]
    if c in (1, 2):
        return images[..., :1].expand(*images.shape[:-1], 3).contiguous()
    if c in (3, 4):
        return images[..., :3]
    raise StableAnimatorError(f"images with {c} channels are not supported: use grayscale, RGB or RGBA")


def check_size(width: int, height: int, multiple: int = 64) -> None:
    """StableAnimator works on latents of size/8 with a UNet that halves them three times."""
    bad = [f"{name}={v}" for name, v in (("width", width), ("height", height)) if v <= 0 or v % multiple]
    if bad:
        def near(v):
            return max(multiple, int(round(v / multiple)) * multiple)
        raise StableAnimatorError(
            f"{' and '.join(bad)} must be a multiple of {multiple}. "
            f"Use {near(width)}x{near(height)} instead (the official models were trained at 512x512 and 576x1024)."
        )


def resize_stretch(images: torch.Tensor, width: int, height: int, mode: str = "bicubic") -> torch.Tensor:
    """Resize (B,H,W,C) images to exactly width x height without keeping the aspect ratio,
    as the official pipeline does for the reference and the pose frames (no crop)."""
    x = images.movedim(-1, 1)
    if x.shape[-2:] != (height, width):
        kwargs = {"antialias": True} if mode in ("bilinear", "bicubic") else {}
        if mode in ("bilinear", "bicubic"):
            kwargs["align_corners"] = False
        x = F.interpolate(x, size=(height, width), mode=mode, **kwargs).clamp(0, 1)
    return x.movedim(1, -1)


def resize_lanczos(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """PIL Lanczos resize of (B,H,W,C) [0,1] images to width x height, no crop: what the official
    pipeline's VaeImageProcessor does to the reference. Goes through uint8 as PIL does."""
    import numpy as np
    from PIL import Image

    if images.shape[1:3] == (height, width):
        return images
    out = []
    for frame in images:
        arr = (frame.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        pil = Image.fromarray(arr if arr.shape[-1] != 1 else arr[..., 0])
        res = np.asarray(pil.resize((width, height), Image.LANCZOS))
        if res.ndim == 2:
            res = res[..., None]
        out.append(torch.from_numpy(res.copy()))
    return torch.stack(out).to(images.dtype).div(255).to(images.device)
