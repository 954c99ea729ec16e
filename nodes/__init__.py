"""The pack's node registry: one ComfyExtension listing every node module's NODES in menu order."""
import logging

from comfy_api.latest import ComfyExtension, io

from . import conditioning, face, hjb, images, model_folders, model_nodes, pose, sampling

log = logging.getLogger("StableAnimator")

NODE_MODULES = [model_nodes, conditioning, sampling, hjb, images, pose, face]


class StableAnimatorExtension(ComfyExtension):
    async def on_load(self) -> None:
        model_folders.register()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [node for module in NODE_MODULES for node in module.NODES]
