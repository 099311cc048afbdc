"""Divide and conquer for graphs too large for one COSMA ILP (NAS networks, whole transformers).

The base order (the warm start's, else the default) is cut into consecutive pieces of at most
``piece_ops`` operators, each cut placed where the fewest live bytes cross it (a narrow cut).
Pieces are solved one after another with the full COSMA model restricted to the piece: free
order inside the piece, and the state at its entry carried over exactly from the previous
piece (which tensors are on chip and at which offsets, which DRAM already holds). Tensors read
by later pieces must leave the piece on chip or in DRAM. Each piece is solved exactly (up to the
time limit); the whole is a heuristic, since a piece cannot see the cost its end state causes
later.

The result is never worse than the warm start (kept if better), and is replayed as one mapping.
Bound: the only lower bound computed here is 0 (no relaxation of the whole graph is solved), so
the gap reported is 1.0 unless the mapping reaches 0 bytes. That is honest, not informative; the
comparison that matters is against the baselines.
"""
from __future__ import annotations

import time

from mappers import milp
from mappers.cosma import CosmaModel, CosmaResult
from mappers.memory_problem import MemoryProblem
from mappers.plan import Plan, plan_from_residency, to_mapping


def narrow_cuts(problem: MemoryProblem, order: list[int], piece_ops: int) -> list[int]:
    """Start positions of pieces: each cut within the last half of a window where the fewest bytes cross."""
    n = len(order)
    iv = problem.live_intervals(order)
    crossing = [0] * (n + 1)  # bytes live across the boundary before position p
    for t, span in enumerate(iv):
        if span is None:
            continue
        for p in range(span[0] + 1, span[1] + 1):
            crossing[p] += problem.tensor_bytes[t]
    starts = [0]
    while n - starts[-1] > piece_ops:
        lo = starts[-1] + max(1, piece_ops // 2)
        hi = starts[-1] + piece_ops
        starts.append(min(range(lo, hi + 1), key=lambda p: (crossing[p], -p)))
    return starts


def divide_and_conquer(problem: MemoryProblem, capacity_bytes: int, *, piece_ops: int = 40,
                       solver: str = "cpsat", time_limit_s: float = 60.0, warm_start: Plan | None = None,
                       threads: int = 2, commit_ops: int | None = None) -> CosmaResult:
    """Solve piece by piece; ``time_limit_s`` is split over the pieces.

    ``commit_ops`` switches to a rolling horizon: each solve sees the next ``piece_ops``
    operators but keeps only its first ``commit_ops`` steps, so every decision is taken with
    some look-ahead (about ``piece_ops / commit_ops`` times more solves).
    """
    problem.require_capacity(capacity_bytes)
    start = time.perf_counter()
    if warm_start is not None and warm_start.non_compulsory_bytes(problem) == 0:
        from mappers.cosma import solve_cosma

        return solve_cosma(problem, capacity_bytes, solver=solver, warm_start=warm_start)  # zero: nothing to do
    order = list(warm_start.order) if warm_start is not None else list(range(problem.n_ops))
    if commit_ops is None:
        starts = narrow_cuts(problem, order, piece_ops)
        sizes = [b - a for a, b in zip(starts, starts[1:] + [len(order)])]
        n_solves = len(starts)
    else:
        commit_ops = max(1, min(commit_ops, piece_ops))
        sizes = []
        n_solves = max(1, -(-(len(order) - piece_ops) // commit_ops) + 1)
    per_piece_s = max(1.0, time_limit_s / n_solves)
    entry: dict[int, int] = {}
    in_dram: set[int] = set()
    loaded: set[int] = set()
    full_order: list[int] = []
    resident: list[dict[int, int]] = []
    spills: list[tuple[int, int]] = []
    statuses: list[str] = []
    failed = False
    remaining = list(order)
    k = 0
    while remaining:
        if commit_ops is None:
            window = remaining[:sizes[k]]
            keep = len(window)
        else:
            window = remaining[:piece_ops]
            keep = len(window) if len(window) == len(remaining) else commit_ops
        k += 1
        ops = sorted(window)  # ascending id = the problem's default (topological) order
        in_window = set(window)
        later = [o for o in remaining if o not in in_window]
        needed_after = {t for o in later for t in problem.op_inputs[o]}
        model = CosmaModel(problem, capacity_bytes, ops=ops, entry=entry, in_dram=in_dram, loaded=loaded,
                           needed_after=needed_after)
        res = milp.solve(model.m, solver, per_piece_s, None, threads)
        if res.values is None:  # retry with the base order fixed inside the piece
            model = CosmaModel(problem, capacity_bytes, order=window, ops=ops, entry=entry,
                               in_dram=in_dram, loaded=loaded, needed_after=needed_after)
            res = milp.solve(model.m, solver, per_piece_s, None, threads)
        if res.values is None:
            failed = True
            break
        statuses.append(res.status)
        sub_order, sub_res, sub_spills = model.decode_steps(res.values)
        sub_order, sub_res = sub_order[:keep], sub_res[:keep]
        sub_spills = [(t, s) for t, s in sub_spills if s < keep]
        offset = len(full_order)
        full_order += sub_order
        resident += sub_res
        spills += [(t, s + offset) for t, s in sub_spills]
        in_dram |= {t for t, _ in sub_spills}
        for step in sub_res:
            loaded |= {t for t in step if problem.is_source(t)}
        done = set(sub_order)
        remaining = [o for o in remaining if o not in done]
        still_needed = {t for o in remaining for t in problem.op_inputs[o]}
        entry = {t: off for t, off in sub_res[-1].items() if t in still_needed}
    base_obj = warm_start.non_compulsory_bytes(problem) if warm_start is not None else None
    plan = None
    if not failed:
        plan = plan_from_residency(problem, full_order, resident, spills)
    if plan is None or (base_obj is not None and plan.non_compulsory_bytes(problem) > base_obj):
        if warm_start is None:
            from accelsim.errors import InfeasibleError

            raise InfeasibleError("divide and conquer found no mapping in time; give more time or a warm start",
                                  field="time_limit")
        plan, status = warm_start, "baseline"
    else:
        status = "feasible"
    objective = plan.non_compulsory_bytes(problem)
    gap = 0.0 if objective == 0 else 1.0
    total_s = time.perf_counter() - start
    meta = {"pieces": k, "piece_status": statuses, "commit_ops": commit_ops, "warm_start_bytes": base_obj,
            "lower_bound": "0 (trivial)"}
    mapping = to_mapping(problem, plan, capacity_bytes, {
        "mapper": "cosma-divide-and-conquer", "solver": solver, "status": status, "best_bound_bytes": 0,
        "gap": gap, "solve_s": total_s, "pieces": k})
    return CosmaResult(plan, mapping, objective, status, 0.0, gap, solver, total_s, "divide", int(capacity_bytes),
                       meta)
