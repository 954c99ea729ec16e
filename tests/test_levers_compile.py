"""torch.compile through core's TorchCompileModel on a StableAnimator MODEL (ID adapter, pose, official windows):
the compiled graphs contain the patched parts, a run compiles each graph once (no recompile per window or step:
dynamo is told to raise on any recompile) and the output equals the eager run. The backend is dynamo's "eager"
(graph capture without code generation) to keep the test fast on CI CPUs; inductor's time is measured in
benchmarks/levers.py."""
import pytest
import torch

from fixtures.official_reference import build_tiny_pipeline, relative_error

FRAMES, H, W = 5, 64, 64
WINDOW, OVERLAP, STEPS = 4, 1, 2   # two windows of 4 (each holding frame 0), cond+uncond batched: 8 per call


@pytest.fixture(scope="module")
def setup(pack, tmp_path_factory):
    from importlib import import_module
    windows = import_module(pack.__name__ + ".nodes.context_windows")
    model, positive, negative, latent, _ = build_tiny_pipeline(pack, tmp_path_factory.mktemp("compile"), FRAMES, H, W)
    model = model.clone()
    windows.set_windows(model, WINDOW, OVERLAP)
    return model, positive, negative, latent


def run(pack, model, positive, negative, latent, seed=3):
    from importlib import import_module
    sampling = import_module(pack.__name__ + ".nodes.sampling")
    with torch.inference_mode():
        return sampling.run_sampler(model, positive, negative, latent, seed, STEPS, 2.0, 3.0, "euler", "karras", 1.0)["samples"]


def test_core_torch_compile_model_compiles_the_patched_model_once(pack, setup, monkeypatch):
    import torch._dynamo
    from comfy_extras.nodes_torch_compile import TorchCompileModel
    model, positive, negative, latent = setup
    graphs = []

    def backend(gm, example_inputs):   # dynamo's "eager" backend, recording each graph it is handed
        graphs.append(str(gm.graph))
        return gm.forward

    torch._dynamo.reset()
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    eager = run(pack, model, positive, negative, latent)
    compiled_model = TorchCompileModel.execute(model, backend).result[0]
    compiled = run(pack, compiled_model, positive, negative, latent)
    first = len(graphs)
    again = run(pack, compiled_model, positive, negative, latent, seed=4)   # another run, other noise: no new graph
    torch._dynamo.reset()

    assert first > 0 and len(graphs) == first, (first, len(graphs))
    captured = "\n".join(graphs)
    assert "id_to_k" in captured and "id_to_v" in captured   # the ID adapter's layers are in the compiled graphs
    assert "final_proj" in captured                            # and PoseNet
    err = relative_error(compiled, eager)
    print(f"compiled vs eager: {err:.2e}, {first} graphs for {STEPS} steps x 2 windows")
    assert err <= 1e-6, err
    assert torch.isfinite(again).all()
