"""``accelsim workloads list|show|experts``: the model zoo and MoE routing statistics."""
from __future__ import annotations

import typer

from accelsim.cli import group, out
from accelsim.cli.jsonout import dumps as dumps_json
from accelsim.errors import AccelsimError

workloads = group("workloads", "List and show zoo models and CNN/NAS networks; MoE expert statistics.")


@workloads.command("list")
def list_command() -> None:
    """List the zoo's transformer models and the built-in CNN/NAS networks with derived sizes."""
    from workloads.cnn import NETWORKS, build_network
    from workloads.cnn.builder import parameter_count as network_parameters
    from workloads.config import zoo_names
    from workloads.models import load_model
    from workloads.transformer import parameter_count

    out.print("transformer models (workloads/zoo):", markup=False)
    for name in zoo_names():
        cfg = load_model(name)
        params = parameter_count(cfg)
        out.print(f"  {name:<24} {cfg.architecture:<16} {cfg.attention_kind:<4} {params / 1e9:9.3f}B params  "
                  f"{'moe' if cfg.moe else 'dense'}", markup=False, highlight=False)
    out.print("CNN and NAS networks (workloads/cnn, 8-bit, default input):", markup=False)
    for name in NETWORKS:
        graph = build_network(name)
        out.print(f"  {name:<24} {len(graph):>4} einsums  {network_parameters(graph) / 1e6:8.2f}M params  "
                  f"{graph.macs / 1e9:8.3f} GMAC", markup=False, highlight=False)


@workloads.command("show")
def show_command(name: str = typer.Argument(..., help="Zoo name, ModelConfig YAML or Hugging Face config.json."),
                 as_json: bool = typer.Option(False, "--json", help="JSON instead of YAML.")) -> None:
    """Print a model configuration (sources included) and its derived parameter count, or a network's summary."""
    from workloads.cnn import NETWORKS, build_network
    from workloads.cnn.builder import parameter_count as network_parameters
    from pathlib import Path

    from workloads.config import zoo_names
    from workloads.models import load_model
    from workloads.transformer import parameter_count

    if name not in NETWORKS and name not in zoo_names() and not (name and Path(name).exists()):
        raise AccelsimError(f"unknown workload {name!r}", field="name", allowed=[*zoo_names(), *NETWORKS])
    if name in NETWORKS:
        graph = build_network(name)
        info = NETWORKS[name]
        data = {"name": name, "einsums": len(graph), "params_derived": network_parameters(graph),
                "macs": graph.macs, "bn_folded_into_conv": True, "published_params": info.published_params, "source": info.source,
                "inputs": {t.name: list(t.shape) for t in graph.inputs if t.role.value == "input"}}
        import yaml

        text = dumps_json(data, indent=2) if as_json else yaml.safe_dump(data, sort_keys=False, width=120)
        out.print(text, markup=False, highlight=False)
        return
    cfg = load_model(name)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["params_derived"] = parameter_count(cfg)
    import yaml

    text = dumps_json(data, indent=2) if as_json else yaml.safe_dump(data, sort_keys=False, width=120)
    out.print(text, markup=False, highlight=False)


@workloads.command("experts")
def experts_command(
    name: str = typer.Argument(..., help="An MoE zoo model or config file."),
    batches: str = typer.Option("1,2,4,8,16,32,64,128", help="Comma-separated decode batch sizes."),
    context: int = typer.Option(2048, help="Decode context length."),
    trials: int = typer.Option(0, help="Also run a seeded Monte Carlo with this many trials."),
    seed: int = typer.Option(0),
) -> None:
    """Decode batch sweep: expected distinct experts per MoE layer and the weight bytes read."""
    from workloads.models import load_model
    from workloads.moe import expected_distinct_experts, simulate_distinct_experts
    from workloads.transformer import build_model

    cfg = load_model(name)
    if cfg.moe is None:
        raise AccelsimError(f"{cfg.name} has no MoE layers", field="model")
    try:
        sizes = [int(b) for b in batches.split(",")]
    except ValueError:
        raise AccelsimError(f"expected comma-separated integers, got {batches!r}", field="batches") from None
    # validate everything before the first line of the table is printed
    bad = [b for b in sizes if b <= 0]
    if bad:
        raise AccelsimError(f"batch sizes must be positive, got {bad[0]}", field="batches")
    if context < 0:
        raise AccelsimError(f"must be a non-negative integer, got {context}", field="context")
    if trials < 0:
        raise AccelsimError(f"must be a non-negative integer (0: no Monte Carlo), got {trials}", field="trials")
    models = {b: build_model(cfg, "decode", batch=b, context=context) for b in sizes}
    E, k = cfg.moe.num_experts, cfg.moe.top_k
    out.print(f"{cfg.name}: {E} experts, top-{k}; decode context {context}", markup=False)
    out.print(f"{'batch':>6} {'distinct':>9} {'monte_carlo':>12} {'weight_GB_read':>15}", markup=False)
    for b in sizes:
        model = models[b]
        weight_read = _weight_bytes_read(model)
        mc = ""
        if trials:
            mean, se = simulate_distinct_experts(b, E, k, trials=trials, seed=seed)
            mc = f"{mean:.3f}±{se:.3f}"
        out.print(f"{b:>6} {expected_distinct_experts(b, E, k):>9.3f} {mc:>12} {weight_read / 1e9:>15.2f}",
                  markup=False, highlight=False)


def _weight_bytes_read(model) -> float:
    from accelsim.engines.roofline import einsum_traffic

    total = 0.0
    for e, n in model.einsums():
        roles = {t.name: t.role.value for t in e.tensors}
        total += n * sum(b for t, b in einsum_traffic(e).items() if roles[t] == "weight")
    return total
