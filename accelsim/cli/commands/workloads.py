"""``accelsim workloads list|show|experts``: the model zoo and MoE routing statistics."""
from __future__ import annotations

import typer

from accelsim.cli import group, out
from accelsim.cli.jsonout import dumps as dumps_json
from accelsim.errors import AccelsimError

workloads = group("workloads", "List and show zoo models and CNN/NAS networks; MoE expert statistics.")


@workloads.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the zoo's transformer models and the built-in CNN/NAS networks with derived sizes."""
    from workloads.cnn import NETWORKS, build_network
    from workloads.cnn.builder import parameter_count as network_parameters
    from workloads.config import zoo_names
    from workloads.models import load_model
    from workloads.transformer import parameter_count

    models = []
    for name in zoo_names():
        cfg = load_model(name)
        models.append({"name": name, "architecture": cfg.architecture, "attention": cfg.attention_kind,
                       "params": parameter_count(cfg), "moe": bool(cfg.moe)})
    networks = []
    for name in NETWORKS:
        graph = build_network(name)
        networks.append({"name": name, "einsums": len(graph), "params": network_parameters(graph),
                         "macs": graph.macs})
    if as_json:
        out.print(dumps_json({"models": models, "networks": networks}, indent=2), markup=False, highlight=False)
        return
    out.print("transformer models (workloads/zoo):", markup=False)
    for m in models:
        out.print(f"  {m['name']:<24} {m['architecture']:<16} {m['attention']:<4} {m['params'] / 1e9:9.3f}B params  "
                  f"{'moe' if m['moe'] else 'dense'}", markup=False, highlight=False)
    out.print("CNN and NAS networks (workloads/cnn, 8-bit, default input):", markup=False)
    for n in networks:
        out.print(f"  {n['name']:<24} {n['einsums']:>4} einsums  {n['params'] / 1e6:8.2f}M params  "
                  f"{n['macs'] / 1e9:8.3f} GMAC", markup=False, highlight=False)


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


# Datatype names -> bytes per expert weight element (fp8/int8: one byte; fp32: four).
EXPERT_DTYPES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}
ROUTINGS = ("uniform", "zipf", "histogram")


@workloads.command("experts")
def experts_command(
    name: str = typer.Argument(..., help="An MoE zoo model or config file."),
    batches: str = typer.Option("1,2,4,8,16,32,64,128", help="Comma-separated decode batch sizes."),
    context: int = typer.Option(2048, help="Decode context length."),
    trials: int = typer.Option(0, help="Also run a seeded Monte Carlo (uniform routing) with this many trials."),
    seed: int = typer.Option(0, help="Seed of the Monte Carlo and of the Zipf sample."),
    routing: str = typer.Option("uniform", help="uniform (expected values), zipf (one seeded sample, popularity "
                                "1/i^s) or histogram (tokens per expert as given)."),
    zipf_exponent: float = typer.Option(1.0, "--zipf-exponent", help="s of the Zipf popularity (0 is uniform)."),
    histogram: str = typer.Option(None, help="With --routing histogram: comma-separated token counts, one per "
                                  "expert, summing to batch x top-k (one batch size only)."),
    dtype: str = typer.Option(None, help="Weight datatype (fp32, fp16, bf16, fp8, int8); default the model's."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Decode batch sweep: distinct experts per MoE layer and the weight bytes read."""
    import math

    from workloads.models import load_model
    from workloads.moe import expected_distinct_experts, route, simulate_distinct_experts
    from workloads.transformer import build_model

    cfg = load_model(name)
    if cfg.moe is None:
        raise AccelsimError(f"{cfg.name} has no MoE layers", field="model")
    sizes = _int_list(batches, "batches")
    # validate everything before the first line of the table is printed
    bad = [b for b in sizes if b <= 0]
    if bad:
        raise AccelsimError(f"batch sizes must be positive, got {bad[0]}", field="batches")
    if context < 0:
        raise AccelsimError(f"must be a non-negative integer, got {context}", field="context")
    if trials < 0:
        raise AccelsimError(f"must be a non-negative integer (0: no Monte Carlo), got {trials}", field="trials")
    if routing not in ROUTINGS:
        raise AccelsimError(f"unknown routing {routing!r}", field="--routing", allowed=ROUTINGS)
    if not (math.isfinite(zipf_exponent) and 0 <= zipf_exponent <= 100):
        raise AccelsimError(f"must be a number in [0, 100], got {zipf_exponent}", field="--zipf-exponent")
    counts = None
    if (histogram is not None) != (routing == "histogram"):
        raise AccelsimError("give --histogram exactly when --routing histogram", field="--histogram")
    if histogram is not None:
        counts = _int_list(histogram, "--histogram")
        if len(sizes) != 1:
            raise AccelsimError(f"a histogram describes one step; got {len(sizes)} batch sizes", field="--batches",
                                allowed="one batch size with --histogram")
    if dtype is not None:
        if dtype not in EXPERT_DTYPES:
            raise AccelsimError(f"unknown datatype {dtype!r}", field="--dtype", allowed=list(EXPERT_DTYPES))
        cfg = cfg.model_copy(update={"dtype_bytes": EXPERT_DTYPES[dtype], "dtype_source": "stated"})
    E, k = cfg.moe.num_experts, cfg.moe.top_k
    if trials:
        from workloads.moe import check_monte_carlo

        for b in sizes:
            check_monte_carlo(b, E, k, trials)
    routes = {b: route(b, E, k, distribution=routing, zipf_exponent=zipf_exponent, histogram=counts,
                       capacity_factor=cfg.moe.capacity_factor, seed=seed) for b in sizes}
    rows = []
    for b in sizes:
        model = build_model(cfg, "decode", batch=b, context=context, routing=routes[b])
        row = {"batch": b, "distinct_experts": routes[b].distinct_experts,
               "distinct_experts_uniform": expected_distinct_experts(b, E, k), "routing": routes[b].source,
               "weight_bytes_read": _weight_bytes_read(model)}
        if trials:
            mean, se = simulate_distinct_experts(b, E, k, trials=trials, seed=seed)
            row.update(monte_carlo_mean=mean, monte_carlo_se=se)
        rows.append(row)
    if as_json:
        doc = {"model": cfg.name, "experts": E, "top_k": k, "context": context, "dtype_bytes": cfg.dtype_bytes,
               "dtype_source": cfg.dtype_source, "routing": routing, "rows": rows}
        out.print(dumps_json(doc, indent=2), markup=False, highlight=False)
        return
    out.print(f"{cfg.name}: {E} experts, top-{k}; decode context {context}; routing {routing}; "
              f"{cfg.dtype_bytes}-byte weights", markup=False)
    out.print(f"{'batch':>6} {'distinct':>9} {'uniform':>9} {'monte_carlo':>12} {'weight_GB_read':>15}", markup=False)
    for r in rows:
        mc = f"{r['monte_carlo_mean']:.3f}±{r['monte_carlo_se']:.3f}" if trials else ""
        out.print(f"{r['batch']:>6} {r['distinct_experts']:>9.3f} {r['distinct_experts_uniform']:>9.3f} {mc:>12} "
                  f"{r['weight_bytes_read'] / 1e9:>15.2f}", markup=False, highlight=False)


def _int_list(text: str, field: str) -> list[int]:
    try:
        return [int(b) for b in text.split(",")]
    except ValueError:
        raise AccelsimError(f"expected comma-separated integers, got {text!r}", field=field) from None


def _weight_bytes_read(model) -> float:
    from accelsim.engines.roofline import einsum_traffic

    total = 0.0
    for e, n in model.einsums():
        roles = {t.name: t.role.value for t in e.tensors}
        total += n * sum(b for t, b in einsum_traffic(e).items() if roles[t] == "weight")
    return total
