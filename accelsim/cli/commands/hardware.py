"""``accelsim hardware list|show``."""
from __future__ import annotations

import typer

from accelsim.cli import group, out

hardware = group("hardware", "List and show hardware presets.")


@hardware.command("list")
def list_command(kind: str = typer.Option(None, help="Only presets of this kind (systolic, spatial, gpu, ...)."),
                 as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the shipped hardware presets."""
    from accelsim.cli import jsonout
    from accelsim.errors import AccelsimError
    from accelsim.hardware import KINDS, list_presets

    if kind is not None and kind not in KINDS:
        raise AccelsimError(f"unknown kind {kind!r}", field="--kind", allowed=sorted(KINDS))
    specs = list_presets(kind)
    if as_json:
        out.print(jsonout.dumps([{"name": s.name, "kind": s.kind, "description": s.description.strip()}
                                 for s in specs], indent=2), markup=False, highlight=False)
        return
    for spec in specs:  # the first line of the description, whole (no word cut)
        first = spec.description.strip().splitlines()[0] if spec.description else ""
        out.print(f"{spec.name:<20} {spec.kind:<10} {first}", markup=False, highlight=False)


@hardware.command("show")
def show_command(name: str = typer.Argument(..., help="Preset name or path to a hardware YAML file.")) -> None:
    """Print a preset's full specification, sources included, as YAML."""
    import yaml

    from accelsim.hardware import load_hardware

    spec = load_hardware(name)
    out.print(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False), markup=False, highlight=False)
