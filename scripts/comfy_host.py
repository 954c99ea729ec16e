"""Start a headless ComfyUI with this pack on a free loopback port, talk to it, and stop it.

Used by the tests (tests/conftest.py) and by the demo (scripts/demo.py). Runs on the CPU by default.

    with ComfyHost.from_setup(models_dir=..., output_dir=...) as host:
        outputs = host.run(api_prompt)
"""
from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Model folders a test or demo models root provides, mapped to ComfyUI folder keys.
MODEL_KEYS = ["checkpoints", "clip_vision", "vae", "stableanimator", "insightface", "dwpose"]
# The example inputs the shipped workflows name in their Load Image / Load Video nodes (assets/README.md).
EXAMPLE_INPUTS = REPO / "assets" / "inputs"
# The newest frontend the browser tests also run against (scripts/setup_host.sh WITH_BROWSER=1 installs it next to
# the host, never into its Python: the host keeps the frontend its ComfyUI pins).
NEW_FRONTEND = "1.58.1"


def host_dir() -> Path:
    return Path(os.environ.get("SA_HOST_DIR", REPO / ".host"))


def frontend_root(version: str) -> Path | None:
    """The static folder of comfyui-frontend-package `version` installed by setup_host.sh, for ComfyUI's
    --front-end-root; None when it is not installed."""
    root = host_dir() / f"frontend-{version}" / "comfyui_frontend_package" / "static"
    return root if (root / "index.html").is_file() else None


class PromptError(RuntimeError):
    """ComfyUI refused or failed a prompt. `.body` holds ComfyUI's JSON answer."""

    def __init__(self, message: str, body: dict):
        super().__init__(message)
        self.body = body

    def user_message(self) -> str:
        """What ComfyUI shows the user: the validation errors of each node, or the execution error."""
        body = self.body
        if "node_errors" in body:
            parts = [body.get("error", {}).get("message", "")]
            for node_id, entry in body["node_errors"].items():
                for e in entry.get("errors", []):
                    parts.append(f"{entry.get('class_type')} #{node_id}: {e.get('message')}: {e.get('details')}")
            return "\n".join(p for p in parts if p)
        return ComfyHost.error_message(body)


def read_host_env() -> tuple[str, str]:
    """Python and ComfyUI root written by scripts/setup_host.sh."""
    env_file = host_dir() / "host.env"
    if not env_file.exists():
        raise RuntimeError(f"{env_file} is missing: run scripts/setup_host.sh first")
    values = {}
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = shlex.split(value)[0]
    return values["SA_HOST_PYTHON"], values["SA_COMFYUI_PATH"]


def import_comfy(cpu: bool = True, sdpa: bool = False) -> str:
    """Make the host's ComfyUI importable in this process (for in-process tests, benchmarks, weight writers);
    returns its root. Its root goes first on sys.path so that `nodes` is ComfyUI's; ComfyUI's own argument
    parser must not see our argv; `utils.extra_config` must be imported before `nodes` (nodes.py puts comfy/
    on sys.path, where comfy/utils.py would shadow the utils package). `sdpa` picks PyTorch's attention, which
    only works before ComfyUI's attention module is first imported."""
    root = read_host_env()[1]
    if root not in sys.path:
        sys.path.insert(0, root)
    saved_argv = sys.argv
    sys.argv = [sys.argv[0]]
    try:
        from comfy.cli_args import args
        args.cpu = cpu
        args.use_pytorch_cross_attention = sdpa or args.use_pytorch_cross_attention
        import utils.extra_config  # noqa: F401
        import comfy.model_management  # noqa: F401
        import nodes  # noqa: F401
    finally:
        sys.argv = saved_argv
    return root


def import_pack(name: str = "ComfyUI_StableAnimator"):
    """This pack as ComfyUI loads it (a package named after its folder, relative imports); import_comfy first."""
    import importlib.util
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """A workflow as ComfyUI's "Save" writes it -> the API format /prompt takes, as the frontend converts it
    (comfyui-autograph with the live /object_info). Renamed option labels are brought up to date first: the
    frontend passes an old label on by position and the pack accepts it, while autograph matches values to
    the current options and would drop it."""
    import importlib.util
    from autograph import Flow, NodeInfo
    spec = importlib.util.spec_from_file_location("sa_renamed_options", REPO / "stableanimator_core" / "renamed_options.py")
    renamed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(renamed)
    ui = renamed.migrate_workflow(ui)
    api = json.loads(Flow(ui, node_info=NodeInfo(object_info)).convert().to_json())
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}


def install_example_inputs(input_dir) -> list[Path]:
    """Copy the shipped example inputs into a ComfyUI input folder (what README tells a user to do once)."""
    import shutil
    input_dir = Path(input_dir)
    input_dir.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(f, input_dir / f.name)) for f in sorted(EXAMPLE_INPUTS.iterdir()) if f.is_file()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyHost:
    def __init__(self, python: str, comfy_root: str, models_dir: str | None = None,
                 output_dir: str | None = None, input_dir: str | None = None, extra_args=(), log_path=None,
                 custom_nodes: str | None = None, front_end_root: str | None = None):
        self.python, self.root = python, comfy_root
        self.work = Path(tempfile.mkdtemp(prefix="sa_host_"))
        self.models_dir = Path(models_dir) if models_dir else None
        self.output_dir = Path(output_dir or self.work / "output")
        self.input_dir = Path(input_dir or self.work / "input")
        self.extra_args = list(extra_args)
        self.log_path = Path(log_path or self.work / "comfyui.log")
        self.custom_nodes = custom_nodes   # an extra custom_nodes folder (the tests' own helper nodes)
        self.front_end_root = front_end_root   # another frontend's static files (ComfyUI's --front-end-root)
        self.port = None
        self.proc = None

    @classmethod
    def from_setup(cls, **kwargs) -> "ComfyHost":
        return cls(*read_host_env(), **kwargs)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 180) -> "ComfyHost":
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.input_dir.mkdir(parents=True, exist_ok=True)
        args = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--disable-auto-launch",
                "--disable-api-nodes", "--output-directory", str(self.output_dir),
                "--input-directory", str(self.input_dir), "--temp-directory", str(self.work)]
        if self.models_dir:
            # Extra model paths are how a user points ComfyUI at more folders; the tests use a temp root.
            for key in MODEL_KEYS:
                (self.models_dir / key).mkdir(parents=True, exist_ok=True)
            yaml = self.work / "extra_model_paths.yaml"
            yaml.write_text("sa_test:\n" + f"    base_path: {self.models_dir}\n"
                            + "".join(f"    {k}: {k}\n" for k in MODEL_KEYS)
                            + (f"    custom_nodes: {Path(self.custom_nodes).resolve()}\n" if self.custom_nodes else ""))
            args += ["--extra-model-paths-config", str(yaml)]
        if self.front_end_root:
            args += ["--front-end-root", str(self.front_end_root)]
        args += self.extra_args
        for _ in range(3):  # a port can be taken between free_port() and bind: retry on another
            self.port = free_port()
            log = open(self.log_path, "ab")
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            self.proc = subprocess.Popen(args + ["--port", str(self.port)], cwd=self.root,
                                         stdout=log, stderr=subprocess.STDOUT, env=env)
            if self._wait_ready(timeout):
                return self
            self.stop()
        raise RuntimeError(f"ComfyUI did not start; log at {self.log_path}:\n{self.log()[-4000:]}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                self.get("/system_stats")
                return True
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- HTTP ------------------------------------------------------------------------------------
    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, payload: dict) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"{}")   # /history and /queue answer with no body
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def object_info(self, node: str | None = None) -> dict:
        return self.get("/object_info" + (f"/{node}" if node else ""))

    def queue(self, prompt: dict) -> str:
        """POST an API-format prompt; returns its id or raises PromptError on validation failure."""
        status, body = self.post("/prompt", {"prompt": prompt, "client_id": str(uuid.uuid4())})
        if status != 200:
            raise PromptError(f"prompt refused (HTTP {status}): {json.dumps(body)[:3000]}", body)
        return body["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 900) -> dict:
        """Wait for a queued prompt; returns its history entry or raises PromptError on failure."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                status = entry["status"]
                if status.get("status_str") == "error":
                    raise PromptError(f"prompt failed: {self.error_message(entry)}", entry)
                if status.get("completed"):
                    return entry
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited during the prompt:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")

    def run(self, prompt: dict, timeout: float = 900) -> dict:
        """Queue, wait, and return the prompt's outputs (node id -> ui output)."""
        return self.wait(self.queue(prompt), timeout)["outputs"]

    @staticmethod
    def error_message(entry: dict) -> str:
        for kind, data in entry.get("status", {}).get("messages", []):
            if kind == "execution_error":
                return f"{data.get('node_type')}: {data.get('exception_type')}: {data.get('exception_message')}"
        return json.dumps(entry.get("status"))[:2000]


if __name__ == "__main__":  # manual use: python scripts/comfy_host.py  -> serves until Ctrl-C
    with ComfyHost.from_setup() as h:
        print(f"ComfyUI with StableAnimator at {h.url} (log {h.log_path})", flush=True)
        try:
            h.proc.wait()
        except KeyboardInterrupt:
            pass
    sys.exit(0)
