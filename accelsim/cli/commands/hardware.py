"""``accelsim hardware list|show``."""
from __future__ import annotations

import typer

from accelsim.cli import group, out

hardware = group("hardware", "List and show hardware presets.")


@hardware.command("list")
def list_command(kind: str = typer.Option(None, help="Only presets of this kind (systolic, spatial, gpu, ...).")) -> None:
    """List the shipped hardware presets."""
    from accelsim.hardware import list_presets

    for spec in list_presets(kind):
        out.print(f"{spec.name:<28} {spec.kind:<10} {spec.description.strip().splitlines()[0][:90] if spec.description else ''}",
                  markup=False, highlight=False)


@hardware.command("show")
def show_command(name: str = typer.Argument(..., help="Preset name or path to a hardware YAML file.")) -> None:
    """Print a preset's full specification, sources included, as YAML."""
    import yaml

    from accelsim.hardware import load_hardware

    spec = load_hardware(name)
    out.print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), markup=False, highlight=False)
