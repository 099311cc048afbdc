"""``accelsim sweep run|status|table|compact|dask-env``: design-space sweeps from a YAML spec."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer

from accelsim.cli import err, group, out
from accelsim.errors import AccelsimError

sweep = group("sweep", "Run design-space sweeps and inspect their results.")


class _Bar:
    """tqdm progress on stderr: points done, rate, time left. CLI only (the library stays quiet)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.failed = 0

    def start(self, total: int, already_done: int) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="pt", file=sys.stderr, dynamic_ncols=True, smoothing=0.1,
                            desc="sweep" + (f" ({already_done} already done)" if already_done else ""))

    def advance(self, ok: int, failed: int) -> None:
        self.failed += failed
        if self.bar is not None:
            self.bar.update(ok + failed)
            if failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _terminate_as_interrupt(signum, frame):  # noqa: ANN001
    raise KeyboardInterrupt


@sweep.command("run")
def run_command(
    spec_path: Path = typer.Argument(..., help="Sweep specification (YAML)."),
    out_dir: Path = typer.Option(None, "--out", help="Results directory (default: sweeps/<spec name>)."),
    executor: str = typer.Option("process", help="serial, process or dask."),
    dask: str = typer.Option(None, "--dask", help="Dask scheduler address, e.g. tcp://host:8786 (implies dask)."),
    workers: int = typer.Option(None, help="Process-pool size (default: all cores)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Re-run points recorded as failed."),
    progress: bool = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: when a terminal)."),
    allow_code: bool = typer.Option(False, "--allow-code",
                                    help="Let the spec import and run 'package.module:function' builders and "
                                         "evaluators (off: a sweep file is data; only registered and installed ones run)."),
    max_points: int = typer.Option(None, "--max-points", min=1,
                                   help="Allow a spec that expands to more points than the default limit "
                                        "(1,000,000; grid or samples times workloads, before constraints)."),
) -> None:
    """Run a sweep, or resume it: points already in the results directory are not recomputed."""
    from accelsim.sweep import SweepSpec, run_sweep, sweep_status

    from accelsim.outputs import check_output_dir

    spec = SweepSpec.from_yaml(spec_path, allow_code=allow_code,
                               **({} if max_points is None else {"max_points": max_points}))
    out_dir = check_output_dir(out_dir or Path("sweeps") / spec.name, "--out")  # before any point runs
    bar = _Bar(sys.stderr.isatty() if progress is None else progress)
    previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        result = run_sweep(spec, out_dir, executor=executor, workers=workers, dask=dask,
                           retry_failed=retry_failed, progress=bar)
    except KeyboardInterrupt:
        bar.close()
        try:
            status = sweep_status(out_dir)
        except AccelsimError:  # stopped before the manifest was written: nothing ran yet
            err.print("accelsim: interrupted before any point ran", markup=False, highlight=False)
            raise typer.Exit(130) from None
        err.print(f"accelsim: interrupted; {status['done']} done, {status['failed']} failed, "
                  f"{status['pending']} pending in {out_dir} (run again to resume)", markup=False, highlight=False)
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    out.print(f"{result.total} points ({result.skipped_by_constraints} removed by constraints): "
              f"{result.already_done} already done, {result.computed} computed "
              f"({result.ok} ok, {result.failed} failed) -> {out_dir}", markup=False, highlight=False)


@sweep.command("status")
def status_command(directory: Path = typer.Argument(..., help="A sweep results directory."),
                   as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """How many points are done, failed and pending."""
    from accelsim.sweep import sweep_status

    s = sweep_status(directory)
    if as_json:
        from accelsim.cli import jsonout

        out.print(jsonout.dumps(s, indent=2, default=str), markup=False, highlight=False)
        return
    out.print(f"{s['name']}: {s['total']} points: {s['done']} done, {s['failed']} failed "
              f"({s['errors']} errors, {s['infeasible']} infeasible), {s['pending']} pending; "
              f"{s['skipped_by_constraints']} removed by constraints; {s['rows_on_disk']} rows in "
              f"{s['part_files']} part files", markup=False, highlight=False)


@sweep.command("table")
def table_command(
    directory: Path = typer.Argument(..., help="A sweep results directory."),
    csv: Path = typer.Option(None, help="Write the table as CSV here instead of printing it."),
    failed: bool = typer.Option(False, "--failed", help="Only failed points, with their errors."),
    max_rows: int = typer.Option(60, "--max-rows", help="Rows to print (0: all)."),
) -> None:
    """The results table: one row per point."""
    from accelsim.sweep import load_results

    df = load_results(directory)
    if failed:
        df = df[df["status"] != "ok"]
    if max_rows < 0:
        raise AccelsimError(f"must be 0 (all) or a positive number of rows, got {max_rows}", field="--max-rows")
    if csv is not None:
        from accelsim.outputs import write_output

        write_output(csv, df.to_csv(index=False), "--csv")
        out.print(f"{len(df)} rows -> {csv}", markup=False, highlight=False)
    elif df.empty:
        out.print("no rows", markup=False)
    else:
        import pandas as pd

        shown = df.drop(columns=["key"])
        with pd.option_context("display.width", 10**6, "display.max_columns", None):
            out.print(shown.to_string(index=False, max_rows=max_rows or None), markup=False, highlight=False)
        if max_rows and len(shown) > max_rows:  # say how to get the rest instead of cutting silently
            out.print(f"({len(shown)} rows, {len(shown.columns)} columns; all of them: --max-rows 0 or --csv FILE)",
                      markup=False, highlight=False)



@sweep.command("compact")
def compact_command(directory: Path = typer.Argument(..., help="A sweep results directory.")) -> None:
    """Merge the part files of a results directory into one (refused while a sweep runs on it)."""
    from accelsim.sweep import ResultStore, sweep_status

    from accelsim.sweep.lock import directory_lock

    sweep_status(directory)  # a clear error if this is not a results directory
    with directory_lock(directory, purpose="sweep compact"):
        n = ResultStore(directory).compact()
    out.print(f"merged {n} part files" if n else "nothing to merge", markup=False, highlight=False)


@sweep.command("dask-env")
def dask_env_command(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Dask settings for a sweep cluster, as shell exports: eval "$(accelsim sweep dask-env)" before
    starting 'dask scheduler' and 'dask worker' (they cut an idle cluster's CPU about six-fold)."""
    import shlex

    from accelsim.sweep.dask_settings import env

    variables = env()
    if as_json:
        from accelsim.cli import jsonout

        out.print(jsonout.dumps(variables, indent=2), markup=False, highlight=False)
        return
    for name, value in variables.items():
        out.print(f"export {name}={shlex.quote(value)}", markup=False, highlight=False)
