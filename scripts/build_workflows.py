"""Builds the shipped workflows (workflows/*.json) in ComfyUI's real frontend, from the specs in this file.

    .host/venv/bin/python scripts/build_workflows.py             # rewrite workflows/*.json
    .host/venv/bin/python scripts/build_workflows.py --pictures  # also the template thumbnails (workflows/*.jpg)
                                                                 # and screenshots (assets/screenshots/)

Run it again after a node's inputs, outputs or widgets change. It starts a private headless ComfyUI with this
pack (scripts/comfy_host.py) and Debian's Chromium (scripts/frontend.py), creates every node through the frontend
itself (so ids, slots and widget values are what the frontend makes), measures each node as the frontend sizes
it, lays the graph out in columns of groups with room for titles and badges, and saves the graph the way the
frontend's Export does. When the newest frontend is installed (scripts/setup_host.sh WITH_BROWSER=1 puts it in
.host/frontend-<NEW_FRONTEND>), each file is also opened there, on a second host, and built again with the room that
frontend needs (its notes' text and its previews are taller), so the notes fit in both.
About 1.5 min (3 to 4 with --pictures) on a loaded 2-core machine.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from comfy_host import NEW_FRONTEND, REPO, ComfyHost, frontend_root, install_example_inputs  # noqa: E402
from frontend import Frontend  # noqa: E402

OUT = REPO / "workflows"
UUID_NAMESPACE = uuid.UUID("4f0c7b8e-2d1a-4c55-9a57-1f3e5b2c8d90")   # fixed: a rebuild keeps each file's id

# Layout, in graph units. A node's title bar (30) sits above its pos, the pack's source badge above that.
PAD = 16            # inside a group, around its nodes
GAP = 22            # between one node's bottom and the next node's badge
COLUMN_GAP = 60
GROUP_GAP = 40
MIN_WIDTH = 320
SCALE = 1.0         # the stored zoom: notes and widgets at the size the frontend's settings give them
TALL = {"LoadImage": 360, "PreviewImage": 300, "SaveAnimatedWEBP": 400, "SaveImage": 330, "LoadVideo": 420,
        "SaveVideo": 420}   # room for previews
NOTE_WIDTH = 440
INPUT_COLOR = ("#232", "#353")     # LiteGraph's green: the nodes where a user picks files
SIZE_COLOR = ("#223", "#335")      # LiteGraph's blue: where the video size is set

HF_SA = "https://huggingface.co/FrancisRing/StableAnimator/resolve/main/"
# Every file a workflow needs: name (as its loader's widget or its model folder lists it) -> (folder, where it is
# published). The frontend's missing-model dialog lists what is not in the folder (1.32.9: the loaders'
# properties.models whose names are widget values, plus the workflow's top-level `models`; newer frontends: the
# loaders' file widgets whose value is not installed, with folder and address from properties.models).
MODELS = {
    "svd_xt.safetensors": ("checkpoints", "https://huggingface.co/stabilityai/stable-video-diffusion-img2vid-xt"
                                          "/resolve/main/svd_xt.safetensors"),
    "unet.pth": ("stableanimator", HF_SA + "Animation/unet.pth"),
    "pose_net.pth": ("stableanimator", HF_SA + "Animation/pose_net.pth"),
    "face_encoder.pth": ("stableanimator", HF_SA + "Animation/face_encoder.pth"),
    "glintr100_torch.pth": ("stableanimator", HF_SA + "Animation/glintr100_torch.pth"),
    "models/antelopev2/scrfd_10g_bnkps.onnx": ("insightface", HF_SA + "models/antelopev2/scrfd_10g_bnkps.onnx"),
    "models/antelopev2/glintr100.onnx": ("insightface", HF_SA + "models/antelopev2/glintr100.onnx"),
    "yolox_l.onnx": ("dwpose", HF_SA + "DWPose/yolox_l.onnx"),
    "dw-ll_ucoco_384.onnx": ("dwpose", HF_SA + "DWPose/dw-ll_ucoco_384.onnx"),
}
# The files each loader reads (Load Face Analysis reads the antelopev2 pack, named by no widget; Load ArcFace's
# widget says "stableanimator/glintr100_torch.pth", which is not the name the folder lists).
LOADER_FILES = {
    "StableAnimatorModelLoader": ["svd_xt.safetensors", "unet.pth", "pose_net.pth", "face_encoder.pth"],
    "StableAnimatorFaceAnalysisLoader": ["models/antelopev2/scrfd_10g_bnkps.onnx", "models/antelopev2/glintr100.onnx"],
    "StableAnimatorDWPoseLoader": ["yolox_l.onnx", "dw-ll_ucoco_384.onnx"],
    "StableAnimatorArcFaceLoader": ["glintr100_torch.pth"],
}
# Empty stand-ins in the builder's models root, so the loaders' lists hold the names the workflows use.
PLACEHOLDER_MODELS = ["checkpoints/svd_xt.safetensors", "stableanimator/unet.pth", "stableanimator/pose_net.pth",
                      "stableanimator/face_encoder.pth", "stableanimator/glintr100_torch.pth",
                      "dwpose/yolox_l.onnx", "dwpose/dw-ll_ucoco_384.onnx"]
VIDEO_FPS = 8.0   # the pose-frame workflows' mp4 and WEBP: the example pose clip's rate, as the official GIFs


@dataclass
class Node:
    key: str
    type: str
    title: str | None = None
    widgets: dict = field(default_factory=dict)
    color: tuple | None = None
    text: str | None = None          # MarkdownNote text


@dataclass
class Workflow:
    name: str
    columns: list       # each a list of (group title, [node keys])
    nodes: list
    links: list         # (src key, output name, dst key, input name)


# -------------------------------------------------------------------------------------------------------------
# The workflows

MODELS_NOTE = """**Models** (nothing is downloaded; press *r* after adding files):
- `models/checkpoints/svd_xt.safetensors`
- `models/stableanimator/unet.pth`, `pose_net.pth`, `face_encoder.pth`
- `models/insightface/models/antelopev2/` with `scrfd_10g_bnkps.onnx` and `glintr100.onnx`
"""
DWPOSE_NOTE = "- `models/dwpose/yolox_l.onnx` and `dw-ll_ucoco_384.onnx`\n"
ARCFACE_NOTE = "- `models/stableanimator/glintr100_torch.pth` (or pick antelopev2's `glintr100.onnx` in Load ArcFace)\n"
WHERE_NOTE = ("Weights: huggingface.co/FrancisRing/StableAnimator and stabilityai/stable-video-diffusion-img2vid-xt. "
              "antelopev2 is for non-commercial use only.")
EXAMPLES_NOTE = ("The examples `{files}` are in the pack's `assets/inputs/`: copy them into ComfyUI's `input` folder "
                 "once, or pick your own files.")
OFFICIAL_NOTE = "Official settings: 25 steps, cfg 3.0, fps 7, motion bucket 127, augmentation 0.02."


def note(title: str, pick: str, size: str, files: list[str], extra_models: str = "", more: str = "") -> str:
    return (f"## {title}\n\n**Pick:** {pick} {EXAMPLES_NOTE.format(files='`, `'.join(files))}\n\n"
            f"**Video size:** {size}\n\n"
            f"{MODELS_NOTE}{extra_models}\n{WHERE_NOTE}\n\n{OFFICIAL_NOTE}"
            + (f"\n\n{more}" if more else ""))


def inputs_of(info: dict, node_type: str) -> set:
    spec = info[node_type]["input"]
    return set(spec.get("required", {})) | set(spec.get("optional", {}))


def common_nodes(info: dict) -> list[Node]:
    apply = {"id_strength": 1.0, "pose_strength": 1.0}
    sampler = {"seed": 42, "steps": 25, "cfg_min": 3.0, "cfg_max": 3.0, "sampler_name": "euler", "scheduler": "karras",
               "denoise": 1.0}
    # the long-video windows are set on Apply (it sets ComfyUI's context windows) or, in older versions, the sampler
    (apply if "window" in inputs_of(info, "StableAnimatorApply") else sampler).update(window=16, overlap=4)
    return [
        Node("loader", "StableAnimatorModelLoader", widgets={"svd_checkpoint": "svd_xt.safetensors", "unet": "unet.pth",
             "pose_net": "pose_net.pth", "face_encoder": "face_encoder.pth", "dtype": "auto"}),
        Node("face_loader", "StableAnimatorFaceAnalysisLoader", widgets={"provider": "auto", "det_size": 640}),
        Node("face_embed", "StableAnimatorFaceEmbed", "Face Embed (reference)",
             widgets={"channel_order": "BGR (training)", "on_missing": "error"}),
        Node("apply", "StableAnimatorApply", widgets=apply),
        Node("cond", "StableAnimatorConditioning", widgets={"frames": 0, "fps": 7, "motion_bucket_id": 127,
                                                            "augmentation": 0.02, "seed": 0}),
        Node("sampler", "StableAnimatorSampler", widgets=sampler),
        Node("decode", "StableAnimatorDecode", widgets={"chunk": 4}),
    ]


def video_out_nodes(prefix: str, fps: float | None, webp: bool) -> list[Node]:
    """Decoded frames -> core Create Video -> core Save Video (h264 mp4); `fps` None: linked from Video Frames.
    With `webp`, also an animated WEBP of the same frames."""
    nodes = [Node("create", "CreateVideo", "Create Video", widgets={} if fps is None else {"fps": fps}),
             Node("save", "SaveVideo", "Save video (mp4)", widgets={"filename_prefix": f"video/{prefix}",
                                                                   "format": "mp4", "codec": "h264"})]
    if webp:
        nodes.append(Node("save_webp", "SaveAnimatedWEBP", "Save animated WEBP", widgets={
            "filename_prefix": prefix, "fps": fps, "lossless": False, "quality": 90, "method": "default"}))
    return nodes


def common_links(pose_source: str, size_source: str, webp: bool) -> list[tuple]:
    return [
        ("loader", "MODEL", "apply", "model"), ("loader", "ANIMATOR", "apply", "animator"),
        ("face_loader", "face_analysis", "face_embed", "face_analysis"), ("photo", "IMAGE", "face_embed", "images"),
        ("loader", "CLIP_VISION", "cond", "clip_vision"), ("loader", "VAE", "cond", "vae"),
        ("loader", "ANIMATOR", "cond", "animator"), ("face_embed", "face_embed", "cond", "face_embed"),
        ("reference", "images", "cond", "reference"), (pose_source, "images", "cond", "pose_images"),
        (size_source, "width", "cond", "width"), (size_source, "height", "cond", "height"),
        ("apply", "MODEL", "sampler", "model"), ("cond", "positive", "sampler", "positive"),
        ("cond", "negative", "sampler", "negative"), ("cond", "latent", "sampler", "latent"),
        ("loader", "VAE", "decode", "vae"), ("sampler", "LATENT", "decode", "latent"),
        ("decode", "IMAGE", "create", "images"), ("create", "VIDEO", "save", "video"),
        *([("decode", "IMAGE", "save_webp", "images")] if webp else []),
    ]


def pose_frames_workflow(info, name, title, poses_file, frames, prefix, more="") -> Workflow:
    files = ["stableanimator_reference.jpg", poses_file]
    nodes = [
        Node("note", "MarkdownNote", "Read me", text=note(title, "your photo in *Reference photo* and skeleton frames in "
             "the official DWPose style (coloured sticks on black, one per video frame; an animated WEBP/GIF gives "
             "them all) in *Pose frames*.",
             "set once on *Resize Images* (512×512 or 576×1024); its width and height are linked on, so the sizes "
             f"cannot disagree. The mp4 and the WEBP play at {VIDEO_FPS:g} fps (set on *Create Video*).",
             files, more=more)),
        Node("photo", "LoadImage", "Reference photo", widgets={"image": files[0], "upload": "image"}, color=INPUT_COLOR),
        Node("poses", "LoadImage", "Pose frames", widgets={"image": poses_file, "upload": "image"}, color=INPUT_COLOR),
        Node("resize", "StableAnimatorResizeImage", "Resize Images (video size)",
             widgets={"width": 512, "height": 512, "method": "lanczos (official)"}, color=SIZE_COLOR),
        *common_nodes(info),
        *video_out_nodes(prefix, VIDEO_FPS, webp=True),
    ]
    for n in nodes:
        if n.key == "cond":
            n.widgets["frames"] = frames
    # the reference goes to Conditioning as loaded: Conditioning brings it to the size the official way (stretch)
    links = [("poses", "IMAGE", "resize", "images"),
             *[("photo", "IMAGE", dst, inp) if src == "reference" else (src, out, dst, inp)
               for src, out, dst, inp in common_links("resize", "resize", webp=True)]]
    columns = [[("Start here", ["note"])],
               [("Your inputs", ["photo", "poses", "resize"])],
               [("Models", ["loader", "face_loader", "face_embed"])],
               [("Generate", ["apply", "cond", "sampler"])],
               [("Decode and save", ["decode", "create", "save", "save_webp"])]]
    return Workflow(name, columns, nodes, links)


REFERENCE_FIT = "crop"   # the photo to the video's shape: nothing distorted, no bars in the video (see README)
DRIVING_FIT = "pad"      # the driving frames to the snapped size: only DWPose sees them, nothing of the motion cut


def driving_nodes(info: dict, prefix: str, title: str, extra_models: str = "", more: str = "") -> tuple[list, list]:
    files = ["stableanimator_reference.jpg", "stableanimator_driving.mp4"]
    nodes = [
        Node("note", "MarkdownNote", "Read me", text=note(title, "your photo in *Reference photo* and a video of a "
             "person moving in *Driving video* (mp4, mov, webm, mkv; any size, frame rate and length).",
             "on *Video Frames*: the clip's shape with the long side 512, in multiples of 64 (or exactly "
             "width × height; 576×1024 is trained too). The photo is cropped to that shape (*Resize Images*' fit), "
             "never squeezed. The mp4 keeps the clip's frame rate and sound; *fps*, *start_time*, *duration* and "
             "*frame_cap* pick the part.", files, extra_models=DWPOSE_NOTE + extra_models, more=more)),
        Node("photo", "LoadImage", "Reference photo", widgets={"image": files[0], "upload": "image"}, color=INPUT_COLOR),
        Node("driving", "LoadVideo", "Driving video", widgets={"file": files[1]}, color=INPUT_COLOR),
        Node("frames", "StableAnimatorVideoFrames", "Video Frames (video size)", color=SIZE_COLOR,
             widgets={"width": 512, "height": 512, "size": "follow video aspect", "fit": DRIVING_FIT, "fps": 0.0,
                      "start_time": 0.0, "duration": 0.0, "frame_cap": 0}),
        Node("reference", "StableAnimatorResizeImage", "Resize Images (reference)",
             widgets={"method": "lanczos (official)", "fit": REFERENCE_FIT}),
        Node("dwpose", "StableAnimatorDWPoseLoader", widgets={"detector": "yolox_l.onnx",
             "pose_model": "dw-ll_ucoco_384.onnx", "device": "auto"}),
        Node("extract_ref", "StableAnimatorPoseExtract", "Extract Poses (reference)"),
        Node("extract_drv", "StableAnimatorPoseExtract", "Extract Poses (driving)"),
        Node("align", "StableAnimatorPoseAlign", widgets={"align": True}),
        Node("render", "StableAnimatorPoseRender", "Render Poses",
             widgets={"body": True, "hands": True, "face": True}),
        Node("preview", "PreviewImage", "Aligned poses"),
        *common_nodes(info),
        *video_out_nodes(prefix, None, webp=False),
    ]
    links = [("driving", "VIDEO", "frames", "video"),
             ("photo", "IMAGE", "reference", "images"),
             ("frames", "width", "reference", "width"), ("frames", "height", "reference", "height"),
             ("dwpose", "dwpose", "extract_ref", "dwpose"), ("reference", "images", "extract_ref", "images"),
             ("dwpose", "dwpose", "extract_drv", "dwpose"), ("frames", "frames", "extract_drv", "images"),
             ("extract_drv", "pose_keypoint", "align", "driving"), ("extract_ref", "pose_keypoint", "align", "reference"),
             ("align", "pose_keypoint", "render", "pose_keypoint"),
             ("frames", "width", "render", "width"), ("frames", "height", "render", "height"),
             ("render", "images", "preview", "images"),
             ("frames", "fps", "create", "fps"), ("frames", "audio", "create", "audio"),
             *common_links("render", "render", webp=False)]
    return nodes, links


def driving_workflow(info) -> Workflow:
    nodes, links = driving_nodes(info, "StableAnimator_driving", "Animate a photo with a driving video")
    columns = [[("Start here", ["note"])],
               [("Your inputs", ["photo", "driving", "frames", "reference"])],
               [("Poses from the driving video", ["dwpose", "extract_ref", "extract_drv", "align", "render", "preview"])],
               [("Models", ["loader", "face_loader", "face_embed"])],
               [("Generate", ["apply", "cond", "sampler"])],
               [("Decode and save", ["decode", "create", "save"])]]
    return Workflow("stableanimator_driving_video", columns, nodes, links)


def no_face_option(info: dict) -> str:
    """Face Embed's choice that keeps going on a frame without a face (generated frames may have none)."""
    spec = info["StableAnimatorFaceEmbed"]["input"]["required"]["on_missing"]
    options = spec[1]["options"] if spec[0] == "COMBO" else spec[0]
    return next(o for o in options if o != "error")


def hjb_workflow(info) -> Workflow:
    nodes, links = driving_nodes(
        info, "StableAnimator_hjb", "Driving video + HJB face optimisation", extra_models=ARCFACE_NOTE,
        more="**HJB** refines each step towards the reference face between start_step and end_step (slow: it "
             "decodes and backpropagates through the VAE). *Identity Similarity* scores every frame (CSIM) and saves "
             "a plot.")
    nodes += [
        Node("boxes", "StableAnimatorFaceBoxes", widgets={"expand": 1.2, "min_score": 0.3}),
        Node("arcface", "StableAnimatorArcFaceLoader", widgets={"weights": "stableanimator/glintr100_torch.pth"}),
        Node("hjb", "StableAnimatorHJB", widgets={"start_step": 0, "end_step": 20, "iterations": 3,
                                                  "learning_rate": 0.1, "context": 8, "full_frame": False}),
        Node("embed_out", "StableAnimatorFaceEmbed", "Face Embed (video frames)",
             widgets={"channel_order": "BGR (training)", "on_missing": no_face_option(info)}),
        Node("similarity", "StableAnimatorIdentitySimilarity"),
        Node("save_plot", "SaveImage", "Save CSIM plot", widgets={"filename_prefix": "StableAnimator_csim"}),
    ]
    links += [("align", "pose_keypoint", "boxes", "pose_keypoint"), ("render", "width", "boxes", "width"),
              ("render", "height", "boxes", "height"),
              ("loader", "VAE", "hjb", "vae"), ("arcface", "arcface", "hjb", "arcface"),
              # the photo Face Embed saw: its face box is in that image (the official HJB crops the native-size photo)
              ("photo", "IMAGE", "hjb", "reference"),
              ("face_embed", "face_embed", "hjb", "reference_face"), ("boxes", "masks", "hjb", "face_masks"),
              ("face_loader", "face_analysis", "embed_out", "face_analysis"), ("decode", "IMAGE", "embed_out", "images"),
              ("face_embed", "face_embed", "similarity", "reference"), ("embed_out", "face_embed", "similarity", "frames"),
              ("similarity", "plot", "save_plot", "images")]
    if "MODEL" in info["StableAnimatorHJB"]["output"]:   # a model patch: Apply -> HJB -> Sampler
        links.remove(("apply", "MODEL", "sampler", "model"))
        links += [("apply", "MODEL", "hjb", "model"), ("hjb", "MODEL", "sampler", "model")]
    else:                                                # settings for the sampler's hjb input
        links.append(("hjb", "HJB", "sampler", "hjb"))
    columns = [[("Start here", ["note"])],
               [("Your inputs", ["photo", "driving", "frames", "reference"])],
               [("Poses from the driving video", ["dwpose", "extract_ref", "extract_drv", "align", "render", "boxes", "preview"])],
               [("Models", ["loader", "face_loader", "face_embed", "arcface"])],
               [("Generate", ["apply", "cond", "hjb", "sampler"])],
               [("Decode and save", ["decode", "create", "save"]), ("Identity check", ["embed_out", "similarity", "save_plot"])]]
    return Workflow("stableanimator_hjb_identity", columns, nodes, links)


def workflows(info: dict) -> list[Workflow]:
    """The four shipped workflows for the node definitions in `info` (the host's /object_info)."""
    return [
        pose_frames_workflow(info, "stableanimator_basic", "Animate a photo with pose frames", "stableanimator_poses.webp",
                             0, "StableAnimator"),
        driving_workflow(info),
        hjb_workflow(info),
        pose_frames_workflow(
            info, "stableanimator_long_video", "A long video (64 frames) in windows", "stableanimator_poses_long.webp", 64,
            "StableAnimator_long",
            more="**Long videos:** sampling runs in windows of `window` frames (16, as trained) that all hold "
                 "frame 0, shifted by window − overlap, blended with triangular weights; memory follows the window, "
                 "not the length. *frames* = 0 uses every pose frame."),
    ]


# -------------------------------------------------------------------------------------------------------------
# Building in the frontend

CREATE_JS = """
async (spec) => {
  app.graph.clear();
  const byKey = {};
  for (const s of spec.nodes) {
    const n = LiteGraph.createNode(s.type);
    if (!n) throw new Error('unknown node type ' + s.type);
    if (s.title) n.title = s.title;
    if (s.color) { n.color = s.color[0]; n.bgcolor = s.color[1]; }
    app.graph.add(n);
    for (const [name, value] of Object.entries(s.widgets)) {
      const w = n.widgets?.find(w => w.name === name);
      if (!w) throw new Error(s.type + ' has no widget ' + name);
      w.value = value;
      if (name === 'seed') { const c = n.widgets.find(w => w.name === 'control_after_generate'); if (c) c.value = 'fixed'; }
    }
    if (s.text !== null) n.widgets[0].value = s.text;
    if (s.models) n.properties.models = s.models;
    byKey[s.key] = n;
  }
  for (const [src, out, dst, inp] of spec.links) {
    const a = byKey[src], b = byKey[dst];
    const o = a.findOutputSlot(out), i = b.findInputSlot(inp);
    if (o < 0 || i < 0) throw new Error(`no slot for link ${src}.${out} -> ${dst}.${inp}`);
    if (!a.connect(o, b, i)) throw new Error(`link refused: ${src}.${out} -> ${dst}.${inp}`);
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const out = {};
  for (const [key, n] of Object.entries(byKey)) {
    const badges = (n.badges || []).map(b => typeof b === 'function' ? b() : b);
    out[key] = {id: n.id, computed: Array.from(n.computeSize()),
                badge: badges.length ? Math.max(...badges.map(b => b.height || 0)) + 2 : 0};
  }
  return out;
}
"""

APPLY_LAYOUT_JS = """
async ([spec, layout, groups, view]) => {
  for (const [key, box] of Object.entries(layout)) {
    const n = app.graph.getNodeById(box.id);
    n.pos = [box.x, box.y]; n.size = [box.w, box.h];
  }
  for (const g of [...app.graph.groups]) app.graph.remove(g);
  for (const g of groups) {
    const grp = new LiteGraph.LGraphGroup(g.title); grp.pos = [g.x, g.y]; grp.size = [g.w, g.h]; app.graph.add(grp);
  }
  app.canvas.ds.scale = view.scale; app.canvas.ds.offset = view.offset;
  app.canvas.setDirty(true, true);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
}
"""

EXPORT_JS = "async () => JSON.parse(JSON.stringify((await app.graphToPrompt()).workflow))"


def layout(wf: Workflow, measured: dict, note_heights: dict, minimum: dict | None = None) -> tuple[dict, list]:
    """Columns of groups, each a stack of nodes as wide as the column's widest; returns node boxes and groups.
    `minimum`: key -> [w, h] a node needs in another frontend."""
    minimum = minimum or {}
    boxes, groups = {}, []
    x = 0
    types = {n.key: n.type for n in wf.nodes}
    for column in wf.columns:
        keys = [k for _, ks in column for k in ks]
        width = max([MIN_WIDTH] + [measured[k]["computed"][0] for k in keys] + [minimum.get(k, (0, 0))[0] for k in keys])
        if any(types[k] == "MarkdownNote" for k in keys):
            width = max(width, NOTE_WIDTH)
        width = int(-(-width // 10) * 10)
        y = 0
        for title, ks in column:
            top = y
            y += 34 + PAD   # the group's title bar (font 24 x 1.4)
            for k in ks:
                m = measured[k]
                y += m["badge"] + 30   # badge, then the node's title bar; pos is below both
                h = note_heights.get(k) or max(m["computed"][1], TALL.get(types[k], 0), minimum.get(k, (0, 0))[1])
                boxes[k] = {"id": m["id"], "x": x + PAD, "y": y, "w": width, "h": int(-(-h // 2) * 2)}
                y += boxes[k]["h"] + GAP
            y += PAD - GAP
            groups.append({"title": title, "x": x, "y": top, "w": width + 2 * PAD, "h": y - top})
            y += GROUP_GAP
        x += width + 2 * PAD + COLUMN_GAP
    return boxes, groups


def view_for() -> dict:
    # graph point (0, 0) a little inside the canvas's top-left corner at the stored zoom
    # (the sidebar covers the canvas's left 70 pixels, the floating workflow name its top 80)
    return {"scale": SCALE, "offset": [round(80 / SCALE, 1), round(90 / SCALE, 1)]}


def model_entry(name: str) -> dict:
    directory, url = MODELS[name]
    return {"name": name, "url": url, "directory": directory}


def listed(name: str) -> bool:
    """Whether the frontends may be told about a file. Not the .onnx files (antelopev2, DWPose): ComfyUI 0.3.75's
    model listing (/experiment/models/<folder>) leaves .onnx out, so 1.32.9 would call them missing on every
    load even when installed. Newer frontends list a missing DWPose file anyway, from its loader's widget."""
    return not name.endswith(".onnx")


def node_models(n: Node) -> list | None:
    """properties.models of a loader: the files it names in its widgets (the frontends keep only those)."""
    names = [name for name in LOADER_FILES.get(n.type, []) if name in n.widgets.values() and listed(name)]
    return [model_entry(name) for name in names] or None


def workflow_models(wf: Workflow) -> list:
    """Every file the workflow needs, for the workflow's top-level `models` (the files no widget names, too)."""
    return [model_entry(name) for name in dict.fromkeys(name for n in wf.nodes for name in LOADER_FILES.get(n.type, []))
            if listed(name)]


def spec_json(wf: Workflow) -> dict:
    return {"nodes": [{"key": n.key, "type": n.type, "title": n.title, "widgets": n.widgets, "color": n.color,
                       "text": n.text, "models": node_models(n)} for n in wf.nodes],
            "links": [list(link) for link in wf.links]}


def build(fe: Frontend, wf: Workflow, note_heights: dict | None = None, minimum: dict | None = None) -> tuple[dict, dict]:
    """The workflow made in `fe`'s frontend and laid out; returns what its Export writes and each note's height
    (as tall as its text needs at the column's width, at least `note_heights`' figure). `minimum`: node key ->
    the size another frontend needs for it."""
    spec = spec_json(wf)
    measured = fe.page.evaluate(CREATE_JS, spec)
    notes = [n.key for n in wf.nodes if n.type == "MarkdownNote"]
    boxes, groups = layout(wf, measured, {k: 120 for k in notes}, minimum)
    fe.page.evaluate(APPLY_LAYOUT_JS, [spec, boxes, groups, view_for()])
    # a note is as tall as its text needs at this width (measured in its DOM editor at scale 1)
    heights = {}
    for k in notes:
        over = fe.note_overflow(measured[k]["id"])
        heights[k] = max(boxes[k]["h"] - over["client"] + over["scroll"] + 12, (note_heights or {}).get(k, 0))
    boxes, groups = layout(wf, measured, heights, minimum)
    fe.page.evaluate(APPLY_LAYOUT_JS, [spec, boxes, groups, view_for()])
    # nodes the frontend resized once placed (Load Video's preview keeps the clip's aspect): laid out again
    live = fe.page.evaluate("(ids) => Object.fromEntries(Object.entries(ids).map(([k, id]) =>"
                            " [k, Array.from(app.graph.getNodeById(id).size)]))", {k: b["id"] for k, b in boxes.items()})
    grown = {k: [0, int(-(-v[1] // 2) * 2)] for k, v in live.items() if v[1] > boxes[k]["h"] + 0.5 and k not in notes}
    if grown:
        minimum = {**(minimum or {}), **{k: [max((minimum or {}).get(k, (0, 0))[0], 0), v[1]] for k, v in grown.items()}}
        boxes, groups = layout(wf, measured, heights, minimum)
        fe.page.evaluate(APPLY_LAYOUT_JS, [spec, boxes, groups, view_for()])
    data = fe.page.evaluate(EXPORT_JS)
    data["id"] = str(uuid.uuid5(UUID_NAMESPACE, wf.name))
    data["extra"]["ds"] = view_for()
    data["models"] = workflow_models(wf)
    data["_keys"] = {k: box["id"] for k, box in boxes.items()}   # taken out before writing
    return data, {k: boxes[k]["h"] for k in notes}


def needs_in(fe: Frontend, path: Path, data: dict) -> tuple[dict, dict]:
    """What another frontend (its fonts, paddings and previews differ) needs: the saved file opened there; returns
    node key -> computed [w, h], and note key -> the height its text needs."""
    keys = data.pop("_keys")
    path.write_text(json.dumps(data))
    fe.drop_workflow(path)
    fe.wait_loaded(len(data["nodes"]))
    fe.page.wait_for_function(f"app.graph.id === {json.dumps(data['id'])}", timeout=10_000)
    fe.settle(1.5)
    by_id = {n["id"]: n for n in fe.graph_report()["nodes"]}
    sizes, notes = {}, {}
    for key, node_id in keys.items():
        node = by_id[node_id]
        # heights only: both frontends compute Load Video's width as its width + 104 at any width once its
        # video is loaded (a runaway; they never resize the node for it)
        sizes[key] = [0, int(-(-node["computed"][1] // 2) * 2)]
        if node["type"] == "MarkdownNote":
            saved = next(n["size"] for n in data["nodes"] if n["id"] == node_id)
            over = fe.note_overflow(node_id)
            notes[key] = int(saved[1] + (over["scroll"] - over["client"] + 12 if over["scroll"] > over["client"] else 0))
    data["_keys"] = keys
    return sizes, notes


def write(path: Path, data: dict) -> bool:
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    changed = not path.exists() or path.read_text() != text
    path.write_text(text)
    return changed


def pictures(fe: Frontend, paths: list[Path]) -> None:
    """Template thumbnails (the frontend shows <name>.jpg beside <name>.json: the whole graph) and screenshots of
    each workflow at its stored view (the README shows one)."""
    from PIL import Image
    shots = REPO / "assets" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    for path in paths:
        data = json.loads(path.read_text())
        fe.drop_workflow(path)
        fe.wait_loaded(len(data["nodes"]))
        fe.settle(2.5)   # image previews
        shot = Image.open(fe.screenshot(tmp / f"{path.stem}.png")).convert("RGB")
        # 256 colours keep the UI crisp at a third of the size; the example photo dithers a little
        shot.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(shots / f"{path.stem}.png", optimize=True)
        # the template browser shows square cards: the whole graph fitted into a square window
        fe.page.set_viewport_size({"width": 900, "height": 900})
        fe.fit_all()
        whole = Image.open(fe.screenshot(tmp / f"{path.stem}_all.png")).convert("RGB")
        fe.fit_all()   # focus mode off again
        fe.page.set_viewport_size(fe.viewport)
        # without the canvas's own toolbar (bottom) and Focus Mode's button (top)
        whole.crop((0, 50, 900, 830)).resize((450, 390), Image.LANCZOS).save(path.with_suffix(".jpg"), quality=88)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pictures", action="store_true", help="also write thumbnails and screenshots")
    parser.add_argument("--check", action="store_true", help="write nothing; fail when a file would change")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sa_build_workflows_"))
    models = work / "models"
    for rel in PLACEHOLDER_MODELS:
        (models / rel).parent.mkdir(parents=True, exist_ok=True)
        (models / rel).write_bytes(b"")
    changed = []
    newer = frontend_root(NEW_FRONTEND)
    if newer is None:
        print(f"[build_workflows] frontend {NEW_FRONTEND} is not installed (scripts/setup_host.sh WITH_BROWSER=1): "
              "notes are sized for the host's frontend only", flush=True)
    with contextlib.ExitStack() as stack:
        host = stack.enter_context(ComfyHost.from_setup(models_dir=models, input_dir=work / "input"))
        install_example_inputs(host.input_dir)
        fe = stack.enter_context(Frontend(host.url, work))
        fe.settle(1)
        fe.take_events()
        fe_new = None
        if newer is not None:   # the newest frontend, on a second host: the notes must fit there too
            host_new = stack.enter_context(ComfyHost.from_setup(models_dir=models, input_dir=work / "input",
                                                                front_end_root=newer))
            fe_new = stack.enter_context(Frontend(host_new.url, work / "newer"))
            fe_new.settle(1)
        paths = []
        for wf in workflows(host.object_info()):
            data, heights = build(fe, wf)
            for _ in range(3 if fe_new is not None else 0):   # until the newest frontend needs no more room
                sizes, wanted = needs_in(fe_new, work / f"{wf.name}.json", data)
                boxes = {k: next(n["size"] for n in data["nodes"] if n["id"] == i) for k, i in data["_keys"].items()}
                if all(sizes[k][1] <= boxes[k][1] for k in sizes if k not in wanted) \
                        and all(wanted[k] <= heights[k] for k in wanted):
                    break
                minimum = {k: v for k, v in sizes.items() if k not in wanted}
                data, heights = build(fe, wf, {k: max(wanted[k], heights[k]) for k in heights}, minimum)
            data.pop("_keys")
            path = OUT / f"{wf.name}.json"
            paths.append(path)
            if args.check:
                if not path.exists() or json.loads(path.read_text()) != data:
                    changed.append(path.name)
            elif write(path, data):
                changed.append(path.name)
            print(f"[build_workflows] {path.relative_to(REPO)}: {len(data['nodes'])} nodes, "
                  f"{len(data['links'])} links, notes {heights}", flush=True)
        problems = [e for e in fe.take_events() if "Content Security Policy" not in e[1]]
        if problems:
            print("[build_workflows] the frontend reported:", *problems, sep="\n  ")
        if args.pictures and not args.check:
            pictures(fe, paths)
    shutil.rmtree(work, ignore_errors=True)
    if args.check and changed:
        print(f"[build_workflows] out of date: {', '.join(changed)}; run scripts/build_workflows.py")
        return 1
    print(f"[build_workflows] {'changed: ' + ', '.join(changed) if changed else 'no change'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
