"""HJB decoder checkpointing: what keeping the decoder's activations costs in memory, and what recomputing them
costs in time.

    .host/venv/bin/python benchmarks/hjb_checkpointing.py

1. Memory: the bytes autograd keeps for one decoded chunk (4 frames, the official decode_chunk_size) of the
   full-size SVD temporal decoder (random weights, fp32), counted with the same measure the HJB patch uses at
   run time (nodes/hjb.py saved_activation_bytes), with the activations kept and with the blocks checkpointed.
   Counted at three tile sizes on the CPU and extended to the sizes users decode by the per-pixel figure of the
   largest tile (the count grows linearly with the tile area; the script prints the per-pixel figure at each
   size so the reader sees it). fp16 halves every figure.
2. Time: one refined HJB step (3 Adam iterations, region decoding) on the narrow test decoder and tiny ArcFace,
   activations kept against recomputed, measured in this run; a ratio only.
No assertions.
"""
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "scripts")]

CHUNK = 4
COUNTED = [64, 96, 128]   # square tiles in pixels, counted for real
EXTENDED = [("face region at 512x512 (100 px face + 8 cells of context)", 232, 232),
            ("whole frame 512x512 (full_frame)", 512, 512),
            ("whole frame 576x1024 (full_frame)", 576, 1024)]


def main():
    import torch
    from comfy_host import import_comfy, import_pack
    import_comfy(cpu=True, sdpa=True)
    import_pack("sa_pack")
    from importlib import import_module
    from fixtures.hjb_models import centred_arcface, svd_vae
    hjb_nodes = import_module("sa_pack.nodes.hjb")
    hjb_core = import_module("sa_pack.stableanimator_core.sampling.hjb")

    net = hjb_nodes.decode_function(hjb_nodes.decoder_copy(svd_vae(small=False, seed=1))).module
    print(f"Full-size SVD decoder, one chunk of {CHUNK} frames, fp32, bytes autograd keeps:")
    print(f"{'tile':<12}{'kept MiB':>10}{'checkpointed MiB':>18}{'kept B/px':>11}{'ckpt B/px':>11}")
    per_px = {}
    for size in COUNTED:
        tile = torch.randn(CHUNK, 4, size // 8, size // 8)
        for on in (False, True):
            hjb_nodes.set_checkpointing(net, on)
            per_px[on] = hjb_nodes.saved_activation_bytes(net, tile) / (CHUNK * size * size)
        print(f"{size}x{size:<8}{per_px[False] * CHUNK * size * size / 2**20:>10.1f}"
              f"{per_px[True] * CHUNK * size * size / 2**20:>18.1f}{per_px[False]:>11.0f}{per_px[True]:>11.0f}")
    print(f"\nExtended by the {COUNTED[-1]} px figures, one chunk of {CHUNK} frames:")
    print(f"{'what is decoded':<58}{'kept fp32 GB':>13}{'kept fp16 GB':>13}{'ckpt fp16 GB':>13}")
    for name, h, w in EXTENDED:
        px = CHUNK * h * w
        print(f"{name:<58}{per_px[False] * px / 1e9:>13.2f}{per_px[False] * px / 2e9:>13.2f}{per_px[True] * px / 2e9:>13.2f}")

    vae = svd_vae(small=True, seed=1)
    arcface = centred_arcface()
    frames, size = 4, 128
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(frames, 4, size // 8, size // 8, generator=gen) * 0.7
    ref = torch.nn.functional.normalize(torch.randn(1, 512, generator=gen), dim=-1)
    boxes = torch.tensor([[40, 16, 88, 72]] * frames)
    settings = hjb_core.HJBSettings(iterations=3, context=2)
    decode = hjb_nodes.decode_function(hjb_nodes.decoder_copy(vae))
    seconds = {}
    for on in (True, False, True, False):   # twice each, interleaved; the faster of the two counts
        hjb_nodes.set_checkpointing(decode.module, on)
        t0 = time.perf_counter()
        hjb_core.refine_x0(x0, 0, 25, decode, arcface, ref, boxes, settings)
        seconds[on] = min(seconds.get(on, float("inf")), time.perf_counter() - t0)
    print(f"\nOne refined step ({settings.iterations} iterations, {frames} frames {size}x{size}, narrow decoder, CPU): "
          f"kept {seconds[False]:.2f} s, recomputed {seconds[True]:.2f} s, ratio {seconds[True] / seconds[False]:.2f}")


if __name__ == "__main__":
    main()
