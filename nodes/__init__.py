"""The pack's node registry: one ComfyExtension listing every node module's NODES in menu order.

Each module is imported on its own: one whose imports fail (a package missing from this Python) drops only its
own nodes, with the reason in the log, and the rest of the pack still loads."""
import importlib
import logging

from comfy_api.latest import ComfyExtension, io

from . import model_folders

log = logging.getLogger("StableAnimator")

MODULE_NAMES = ["model_nodes", "conditioning", "sampling", "hjb", "images", "video", "pose", "face"]
# import name -> what to install, for the log line
PACKAGES = {"cv2": "opencv-python", "onnxruntime": "onnxruntime (or onnxruntime-gpu)", "onnx": "onnx",
            "insightface": "insightface", "safetensors": "safetensors"}


def _import_modules():
    modules, failed = [], {}
    for name in MODULE_NAMES:
        try:
            modules.append(importlib.import_module(f".{name}", __name__))
        except Exception as e:   # an optional dependency or a broken install: keep the other nodes
            missing = getattr(e, "name", None) if isinstance(e, ImportError) else None
            fix = (f"install {PACKAGES.get(missing.split('.')[0], missing)} with ComfyUI's Python "
                   "(pip install -r requirements.txt in the pack's folder) and restart ComfyUI") if missing else \
                "see the error above"
            failed[name] = f"{type(e).__name__}: {e}"
            log.error("StableAnimator: the nodes of nodes/%s.py are not available (%s: %s); %s. The other "
                      "StableAnimator nodes still load.", name, type(e).__name__, e, fix, exc_info=missing is None)
    return modules, failed


NODE_MODULES, FAILED_MODULES = _import_modules()


class StableAnimatorExtension(ComfyExtension):
    async def on_load(self) -> None:
        model_folders.register()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [node for module in NODE_MODULES for node in module.NODES]
