"""Combo option labels renamed since workflows were first saved. Saved workflows keep the old labels, so the
nodes accept them as aliases and the workflow converter of the tests and the demo rewrites them.
Node id -> input -> {old label: current label}."""

RENAMED_OPTIONS = {
    # the zeros were called "official", but the official scripts first retry with a second detector
    "StableAnimatorFaceEmbed": {"on_missing": {"zero embedding (official)": "zero embedding (no identity)"}},
    # providers are named as onnxruntime's are (CPU, CUDA, ROCm, ...)
    "StableAnimatorDWPoseLoader": {"device": {"cpu": "CPU"}},
}


def migrate_workflow(ui: dict) -> dict:
    """A UI-format workflow with renamed option labels replaced (a copy; the old labels are unique within
    their node's widget values)."""
    import copy
    ui = copy.deepcopy(ui)
    for node in ui.get("nodes", []):
        renamed = RENAMED_OPTIONS.get(node.get("type"))
        if renamed and isinstance(node.get("widgets_values"), list):
            table = {old: new for names in renamed.values() for old, new in names.items()}
            node["widgets_values"] = [table.get(v, v) if isinstance(v, str) else v for v in node["widgets_values"]]
    return ui
