"""Design-space sweeps: a spec (YAML or Python), executors (serial, process pool, Dask) and a
resumable Parquet store. ``run_sweep(spec, out_dir)`` is the entry point; ``load_results(dir)``
and ``sweep_status(dir)`` read what is on disk."""
from accelsim.sweep.evaluators import EVALUATORS, Evaluator, get_evaluator, register_evaluator
from accelsim.sweep.expr import compile_expression
from accelsim.sweep.run import EXECUTORS, Progress, SweepResult, run_sweep
from accelsim.sweep.spec import Parameter, Point, Range, Sampling, SweepSpec, latin_hypercube
from accelsim.sweep.store import ResultStore, load_results, sweep_status
from accelsim.sweep.workloads import BUILDERS, register_builder

__all__ = ["BUILDERS", "EVALUATORS", "EXECUTORS", "Evaluator", "Parameter", "Point", "Progress", "Range",
           "ResultStore", "Sampling", "SweepResult", "SweepSpec", "compile_expression", "get_evaluator",
           "latin_hypercube", "load_results", "register_builder", "register_evaluator", "run_sweep",
           "sweep_status"]
