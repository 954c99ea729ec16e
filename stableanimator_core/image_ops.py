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


# How an image of another shape is brought to width x height. Stretch is what the official pipeline does.
FITS = ("stretch", "crop", "pad")
PAD_VALUE = 0.0   # black bars: the pose renders' background is black, so padded pose frames stay valid renders


def fit_plan(src_w: int, src_h: int, width: int, height: int, fit: str) -> tuple[int, int, int, int]:
    """Where an src_w x src_h image goes in a width x height frame: (scaled_w, scaled_h, x, y).

    stretch: scaled to exactly width x height (x = y = 0).
    crop: scaled to cover the frame keeping its aspect; (x, y) is the top-left corner of the centred
          width x height window inside the scaled image.
    pad: scaled to fit inside the frame keeping its aspect; (x, y) is where the scaled image sits on the
         width x height canvas (bars of PAD_VALUE around it).
    """
    if fit not in FITS:
        raise StableAnimatorError(f"fit '{fit}' is not one of {list(FITS)}")
    if src_w <= 0 or src_h <= 0:
        raise StableAnimatorError(f"cannot fit an image of {src_w}x{src_h} pixels")
    if fit == "stretch":
        return width, height, 0, 0
    if fit == "crop":
        s = max(width / src_w, height / src_h)
        sw, sh = max(width, round(src_w * s)), max(height, round(src_h * s))
        return sw, sh, (sw - width) // 2, (sh - height) // 2
    s = min(width / src_w, height / src_h)
    sw, sh = min(width, max(1, round(src_w * s))), min(height, max(1, round(src_h * s)))
    return sw, sh, (width - sw) // 2, (height - sh) // 2


def place(scaled: torch.Tensor, width: int, height: int, fit: str, x: int, y: int) -> torch.Tensor:
    """The second half of fit_plan for (B,h,w,C) images already scaled to (scaled_h, scaled_w): crop the
    window or pad onto the canvas. Works on torch tensors; the video reader does the same on numpy arrays."""
    if fit == "crop":
        return scaled[:, y:y + height, x:x + width]
    if fit == "pad":
        b, sh, sw, c = scaled.shape
        out = scaled.new_full((b, height, width, c), PAD_VALUE)
        out[:, y:y + sh, x:x + sw] = scaled
        return out
    return scaled


def resize_fit(images: torch.Tensor, width: int, height: int, fit: str = "stretch",
               method: str = "lanczos") -> torch.Tensor:
    """Bring (B,H,W,C) images to width x height by stretch, crop or pad (see fit_plan), resampling with
    Lanczos (the official reference preprocessing) or an interpolate mode (bicubic, bilinear, nearest)."""
    sw, sh, x, y = fit_plan(images.shape[2], images.shape[1], width, height, fit)
    scaled = resize_lanczos(images, sw, sh) if method == "lanczos" else resize_stretch(images, sw, sh, mode=method)
    return place(scaled, width, height, fit, x, y)
