"""The main job: start a headless ComfyUI with this pack and run the demo workflow, writing into ./output/demo.

Run through scripts/demo.sh (which sets the host up first). Prints the output folder at the end.
"""
import argparse
import shutil
import sys
from pathlib import Path

from comfy_host import REPO, ComfyHost


def demo_prompt(reference_name: str, width: int, height: int) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": reference_name}},
        "2": {"class_type": "StableAnimatorResizeImage",
              "inputs": {"images": ["1", 0], "width": width, "height": height, "method": "lanczos (official)"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "reference_576x1024"}},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=str(REPO / "output" / "demo"), help="folder for the results")
    parser.add_argument("--reference", default=str(REPO / "assets" / "reference.jpg"), help="reference photo")
    args = parser.parse_args()
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with ComfyHost.from_setup(output_dir=out) as host:
        print(f"[demo] ComfyUI with StableAnimator is up at {host.url}", flush=True)
        shutil.copy(args.reference, host.input_dir / Path(args.reference).name)
        outputs = host.run(demo_prompt(Path(args.reference).name, 576, 1024))
        files = [out / img["subfolder"] / img["filename"] for node in outputs.values() for img in node.get("images", [])]
    for f in files:
        print(f"[demo] wrote {f}")
    print(f"[demo] output folder: {out}")
    return 0 if files else 1


if __name__ == "__main__":
    sys.exit(main())
