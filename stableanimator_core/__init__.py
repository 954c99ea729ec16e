"""StableAnimator's method in plain torch / numpy / onnxruntime.

Nothing in this package imports ComfyUI: the nodes in ../nodes adapt it to ComfyUI's types and
mechanisms, and the tests run it on its own.
"""
