"""Decoding a video latent with SVD's temporal VAE, in clips of frames, optionally in overlapping spatial tiles.

The temporal decoder mixes the frames of one clip, so a clip's frames must be decoded together, also inside a
tile. Tiles reuse core's tiler (comfy.utils.tiled_scale: overlapping tiles, linearly feathered borders, the same
one VAE Decode (Tiled) uses) with the clip's frames folded into the channels, so every tile call decodes all
frames of the clip at once. Core's VAE.decode_tiled cannot be used for this: it decodes one batch entry (one
frame) per tile call.
"""
import torch

import comfy.model_management as mm
import comfy.utils

from .host_internals import vae_clip_decoder

SCALE = 8   # SVD's VAE: 8 pixels per latent cell


def tiling_problem(tile: int, overlap: int) -> str | None:
    """Why tile/overlap (pixels) cannot tile, or None."""
    if tile and tile < 8 * SCALE:
        return f"tile is {tile} px: use 0 (whole frames) or at least {8 * SCALE} px"
    if tile and 2 * overlap >= tile:
        return (f"tile_overlap ({overlap} px) must be less than half the tile ({tile} px): lower tile_overlap "
                "(64 is a good start) or raise tile")
    return None


def decode_clip(vae, latent: torch.Tensor, tile: int = 0, overlap: int = 64) -> torch.Tensor:
    """One clip of frames (F,4,h,w) -> images (F,H,W,3) in [0, 1]. tile/overlap in pixels; tile 0 (or a tile
    covering the frame) is core's VAE.decode of the clip."""
    frames, channels, h, w = latent.shape
    if not tile or (h * SCALE <= tile and w * SCALE <= tile):
        return vae.decode(latent)
    clip_decoder = vae_clip_decoder(vae)
    cells = tile // SCALE
    clip_decoder.load(clip_decoder.memory_per_frame((frames, channels, min(h, cells), min(w, cells))) * frames)

    def folded(x):   # (1, F*4, th, tw) -> (1, F*3, 8th, 8tw): the clip's frames decoded together
        return clip_decoder.decode(x.reshape(frames, channels, *x.shape[-2:])).reshape(1, -1, *(s * SCALE for s in x.shape[-2:]))

    out = comfy.utils.tiled_scale(latent.reshape(1, frames * channels, h, w), folded, tile_x=cells, tile_y=cells,
                                  overlap=overlap // SCALE, upscale_amount=SCALE, out_channels=frames * 3,
                                  output_device=clip_decoder.output_device)
    return clip_decoder.to_images(out.reshape(frames, 3, h * SCALE, w * SCALE))


def decode_video(vae, samples: torch.Tensor, chunk: int, tile: int = 0, overlap: int = 64, on_clip=None) -> torch.Tensor:
    """The whole latent (F,4,h,w) in clips of `chunk` frames -> (F,H,W,3)."""
    # filled clip by clip: a list joined at the end would hold the decoded video twice for a moment
    frames, out = samples.shape[0], None
    for start in range(0, frames, chunk):
        mm.throw_exception_if_processing_interrupted()
        part = decode_clip(vae, samples[start:start + chunk], tile, overlap)
        part = part.reshape(-1, *part.shape[-3:])
        if out is None:
            out = part.new_empty((frames, *part.shape[1:]))
        out[start:start + part.shape[0]] = part
        if on_clip is not None:
            on_clip(min(start + chunk, frames))
    return out
