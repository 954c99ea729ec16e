"""Convert official StableAnimator .pth files to .safetensors (optionally fp16), keeping their key names.

    python -m stableanimator_core.convert Animation/unet.pth models/stableanimator/unet.safetensors --fp16

The pack reads both formats; .safetensors loads faster and can never carry code.
"""
import argparse
import sys

import torch

from .checkpoint import read_state_dict
from .errors import StableAnimatorError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def convert(src: str, dst: str, dtype: str | None = None) -> int:
    from safetensors.torch import save_file
    sd = read_state_dict(src)
    target = DTYPES[dtype] if dtype else None
    out = {k: (v.to(target) if target is not None and v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    save_file(out, dst, metadata={"converted_from": src.rsplit("/", 1)[-1]})
    return len(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="official .pth file")
    parser.add_argument("dst", help="output .safetensors file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--fp16", action="store_const", const="fp16", dest="dtype", help="store floats as fp16")
    group.add_argument("--bf16", action="store_const", const="bf16", dest="dtype", help="store floats as bf16")
    args = parser.parse_args(argv)
    if not args.dst.endswith(".safetensors"):
        parser.error("the output name must end in .safetensors")
    try:
        n = convert(args.src, args.dst, args.dtype)
    except StableAnimatorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {n} tensors to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
