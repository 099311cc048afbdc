"""``accelsim workloads list|show|experts``: the model zoo and MoE routing statistics."""
from __future__ import annotations

import json

import typer
import yaml

from accelsim.cli import group, out
from accelsim.errors import AccelsimError

workloads = group("workloads", "List and show zoo models; MoE expert statistics.")


@workloads.command("list")
def list_command() -> None:
    """List the zoo models with their derived parameter counts."""
    from workloads.config import load_model, zoo_names
    from workloads.transformer import parameter_count

    for name in zoo_names():
        cfg = load_model(name)
        params = parameter_count(cfg)
        out.print(f"{name:<16} {cfg.architecture:<16} {cfg.attention_kind:<4} {params / 1e9:9.3f}B params  "
                  f"{'moe' if cfg.moe else 'dense'}", markup=False, highlight=False)


@workloads.command("show")
def show_command(name: str = typer.Argument(..., help="Zoo name, ModelConfig YAML or Hugging Face config.json."),
                 as_json: bool = typer.Option(False, "--json", help="JSON instead of YAML.")) -> None:
    """Print a model configuration (sources included) and its derived parameter count."""
    from workloads.config import load_model
    from workloads.transformer import parameter_count

    cfg = load_model(name)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["params_derived"] = parameter_count(cfg)
    text = json.dumps(data, indent=2) if as_json else yaml.safe_dump(data, sort_keys=False, width=120)
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
    from workloads.config import load_model
    from workloads.moe import expected_distinct_experts, simulate_distinct_experts
    from workloads.transformer import build_model
    from accelsim.engines.roofline import roofline  # noqa: F401

    cfg = load_model(name)
    if cfg.moe is None:
        raise AccelsimError(f"{cfg.name} has no MoE layers", field="model")
    try:
        sizes = [int(b) for b in batches.split(",")]
    except ValueError:
        raise AccelsimError(f"expected comma-separated integers, got {batches!r}", field="batches") from None
    E, k = cfg.moe.num_experts, cfg.moe.top_k
    out.print(f"{cfg.name}: {E} experts, top-{k}; decode context {context}", markup=False)
    out.print(f"{'batch':>6} {'distinct':>9} {'monte_carlo':>12} {'weight_GB_read':>15}", markup=False)
    for b in sizes:
        if b <= 0:
            raise AccelsimError(f"batch sizes must be positive, got {b}", field="batches")
        model = build_model(cfg, "decode", batch=b, context=context)
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
