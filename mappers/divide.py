"""Divide and conquer for graphs too large for one COSMA ILP (NAS networks, whole transformers).

The base order (the warm start's, else the default) is cut into consecutive pieces of at most
``piece_ops`` operators, each cut placed where the fewest live bytes cross it (a narrow cut).
Pieces are solved one after another with the full COSMA model restricted to the piece: free
order inside the piece, and the state at its entry carried over exactly from the previous
piece (which tensors are on chip and at which offsets, which DRAM already holds). Tensors read
by later pieces must leave the piece on chip or in DRAM, and each one that leaves off chip is
charged the reload a later piece will pay (``exit_cost``), so a piece cannot look cheap by
handing the next a worse state. The whole is still a heuristic.

Effort and best-so-far: ``passes`` runs the pieces again, each pass cutting the best plan so far
at positions shifted by 1/2, 1/4, 3/4, ... of a piece, and keeps a pass only if it is cheaper;
``max_passes`` adds passes while the deterministic budget lasts. A run with more
passes repeats the runs with fewer first, so more effort never gives a worse result
(``tests/test_cosma_bounds.py``). The result is never worse than the warm start either.

Before the pieces: order moves and the bound. The warm start's order is improved by moving the
operators with the least room across the whole graph (``mappers/order_moves.py``; NASNet-A at
M_R: 442,176 -> 310,464 bytes, a choice no piece holds), and the best order found is solved with
the order fixed (``solve_cosma(mode="fixed")``). The bound is the order-free one of
``mappers/bounds.py`` (a sum of one-operator pieces with their entry state free), raised by
branching on the order of groups of four operators (``mappers/order_bounds.py``) and by a
best-first branch and bound over the order (``mappers/order_search.py``) that stops once it
reaches the best plan's cost. All hold for the whole graph, so the gap reported is real. If the
search ends at a node that orders every tight operator (no further branching can raise it), one
schedule of that node is solved with the order fixed too, which can both improve the plan and
meet the bound (AmoebaNet-D at M_R: 1,455,104 bytes, proven optimal, where the pieces gave
1,756,160). Then the passes, which stop as soon as a plan meets the bound.

Load: each piece gets ``time_limit_s / pieces`` nominal seconds of CP-SAT deterministic time
(``mappers/milp.py``), the order search ``bound_nodes`` nodes (default
``SEARCH_NODES_PER_S * time_limit_s``, about as many CPU seconds again), the order moves
``move_evaluations`` fixed-order bounds (default ``MOVE_EVALS_PER_S * time_limit_s``) and each of
the (at most two) fixed-order solves ``time_limit_s``. All are counts or deterministic time, so
with one thread a run gives the same plan and bound on a loaded machine as on a quiet one; the
wall clock only caps a pass, and the search, at ``milp.wall_cap_s(time_limit_s)`` (reported as
``meta["wall_capped"]``). A whole call can so take several times ``time_limit_s``.
"""
from __future__ import annotations

import math
import time

from mappers import milp
from mappers.bounds import static_lower_bound
from mappers.cosma import CosmaResult, check_time_limit, make_result, solve_cosma
from mappers.cosma_model import CosmaModel
from mappers.memory_problem import MemoryProblem
from mappers.order_bounds import order_branching_bound
from mappers.order_moves import MOVE_EVALS_PER_S, improve_order
from mappers.order_search import SEARCH_NODES_PER_S, order_search_bound
from mappers.plan import Plan, plan_from_residency


def narrow_cuts(problem: MemoryProblem, order: list[int], piece_ops: int, first: int | None = None) -> list[int]:
    """Start positions of pieces: each cut within the last half of a window where the fewest bytes cross
    (``first`` forces the first cut there, to shift the pieces of a later pass)."""
    n = len(order)
    iv = problem.live_intervals(order)
    crossing = [0] * (n + 1)  # bytes live across the boundary before position p
    for t, span in enumerate(iv):
        if span is None:
            continue
        for p in range(span[0] + 1, span[1] + 1):
            crossing[p] += problem.tensor_bytes[t]
    starts = [0] if not first or first >= n else [0, first]
    while n - starts[-1] > piece_ops:
        lo = starts[-1] + max(1, piece_ops // 2)
        hi = starts[-1] + piece_ops
        starts.append(min(range(lo, hi + 1), key=lambda p: (crossing[p], -p)))
    return starts


def _shift(k: int, piece_ops: int) -> int | None:
    """Where pass ``k`` puts its first cut: none for the first pass, then at 1/2, 1/4, 3/4, 1/8, ... of a
    piece (the van der Corput sequence), so no two passes of one run cut along the same lines."""
    if not k:
        return None
    frac, denom, j = 0.0, 1.0, k
    while j:
        denom *= 2
        frac += (j % 2) / denom
        j //= 2
    return max(1, int(piece_ops * frac)) % piece_ops or None


def divide_and_conquer(problem: MemoryProblem, capacity_bytes: int, *, piece_ops: int = 40,
                       solver: str = "cpsat", time_limit_s: float = 60.0, warm_start: Plan | None = None,
                       threads: int = 2, commit_ops: int | None = None, passes: int = 1,
                       seed: int = 0, base_orders: list[list[int]] | None = None,
                       bound_group_size: int = 4, max_passes: int | None = None,
                       bound_nodes: int | None = None, move_evaluations: int | None = None) -> CosmaResult:
    """Solve piece by piece; ``time_limit_s`` is split over the pieces of one pass (so ``passes``
    passes take up to ``passes * time_limit_s``); before them, at most two fixed-order solves of up
    to ``time_limit_s`` each, the order moves and the order search (module docstring, Load).

    ``commit_ops`` switches to a rolling horizon: each solve sees the next ``piece_ops``
    operators but keeps only its first ``commit_ops`` steps, so every decision is taken with
    some look-ahead (about ``piece_ops / commit_ops`` times more solves).
    ``base_orders`` are further orders to cut (e.g. the minimum-peak order): after the passes
    along the best plan, one pass along each, still keeping only what is cheaper.
    ``max_passes`` (default ``passes``): further passes run while the piece solves of all passes so
    far used less than ``passes * time_limit_s`` nominal seconds (deterministic time, so the same on
    a loaded machine); without ``base_orders``, a run with a larger ``max_passes`` repeats the smaller
    one's passes first, so it is never worse.
    ``bound_group_size`` operators are branched on per group in the order-branching bound (fixed
    work, ``group_size!`` orders per group; 4 doubles NASNet-A's bound over 3 for about 15 CPU s).
    ``bound_nodes`` caps the order search (``mappers/order_search.py``) and ``move_evaluations``
    the order moves (``mappers/order_moves.py``); 0 skips either.
    """
    from accelsim.errors import AccelsimError, InfeasibleError

    check_time_limit(time_limit_s)
    if not isinstance(piece_ops, int) or piece_ops < 1:
        raise AccelsimError(f"must be a positive whole number of operators, got {piece_ops!r}", field="piece_ops")
    if not isinstance(passes, int) or passes < 1:
        raise AccelsimError(f"must be a positive whole number, got {passes!r}", field="passes")
    bound_nodes = int(SEARCH_NODES_PER_S * time_limit_s) if bound_nodes is None else bound_nodes
    move_evaluations = int(MOVE_EVALS_PER_S * time_limit_s) if move_evaluations is None else move_evaluations
    for name, value in (("bound_nodes", bound_nodes), ("move_evaluations", move_evaluations)):
        if not isinstance(value, int) or value < 0:
            raise AccelsimError(f"must be a whole number >= 0, got {value!r}", field=name)
    problem.require_capacity(capacity_bytes)
    start = time.perf_counter()
    meta: dict = {"commit_ops": commit_ops, "warm_start_bytes": None, "pass_bytes": []}
    if warm_start is not None:
        meta["warm_start_bytes"] = warm_start.non_compulsory_bytes(problem)
        if meta["warm_start_bytes"] == 0:
            meta["note"] = "warm start already has zero non-compulsory bytes"
            return make_result(problem, warm_start, capacity_bytes, "optimal", 0.0, solver, start, "divide", meta,
                               "cosma-divide-and-conquer")
    best = warm_start
    cost = (lambda p: p.non_compulsory_bytes(problem))
    static = static_lower_bound(problem, capacity_bytes).bytes
    if best is None or cost(best) > static:  # branch on a few operators' order (mappers/order_bounds.py)
        ob = order_branching_bound(problem, capacity_bytes, at_least=static, group_size=bound_group_size,
                                   wall_limit_s=milp.wall_cap_s(time_limit_s))
        static = max(static, ob.bytes)
        meta["order_bound_complete"] = ob.complete
        if ob.wall_capped:
            meta["wall_capped"] = True
    bound = float(static)
    meta["lower_bound"] = "order-free with order branching (mappers/bounds.py, mappers/order_bounds.py)"
    # before the passes, so they do not change with ``passes`` (more passes stay never worse)
    best, bound = _reorder_and_bound(problem, capacity_bytes, best, bound, meta, move_evaluations, bound_nodes,
                                     solver, time_limit_s, threads, seed)
    extra = [list(o) for o in (base_orders or [])]
    for o in extra:
        problem.check_order(o)
    used = 0.0  # nominal seconds the piece solves used (deterministic on CP-SAT)
    n_passes = max(passes, max_passes or passes)
    k = 0
    while True:
        if best is not None and cost(best) <= math.ceil(bound - 1e-6):
            break  # proven optimal: more passes cannot help
        if k < n_passes and (k < passes or used < passes * time_limit_s):  # more passes while the budget lasts
            base = list(best.order) if best is not None else list(range(problem.n_ops))
            shift = _shift(k, piece_ops)
        elif extra:
            base, shift = extra.pop(0), None
            k = max(k, n_passes)
        else:
            break
        k += 1
        wall_deadline = time.perf_counter() + milp.wall_cap_s(time_limit_s)  # per pass; the safety net only
        plan, info = _one_pass(problem, capacity_bytes, base, piece_ops, commit_ops, shift, solver, time_limit_s,
                               threads, seed, wall_deadline)
        used += info["used_s"]
        if info.get("wall_capped"):
            meta["wall_capped"] = True
        meta["pass_bytes"].append(None if plan is None else cost(plan))
        meta.setdefault("pieces", info["pieces"])
        meta.setdefault("piece_status", info["status"])
        if info.get("whole_bound") is not None:  # one piece was the whole problem: its bound is global
            bound = max(bound, info["whole_bound"])
        if plan is not None and (best is None or cost(plan) < cost(best)):
            best = plan
    meta["budget_used_s"] = round(used, 3)
    if best is None:
        raise InfeasibleError("divide and conquer found no mapping in time; give more time or a warm start",
                              field="time_limit")
    status = "baseline" if best is warm_start else "feasible"
    if status == "baseline" and cost(best) <= math.ceil(bound - 1e-6):
        status = "optimal"
    return make_result(problem, best, capacity_bytes, status, float(bound), solver, start, "divide", meta,
                       "cosma-divide-and-conquer")


def _reorder_and_bound(problem: MemoryProblem, capacity_bytes: int, best: Plan | None, bound: float, meta: dict,
                       move_evaluations: int, bound_nodes: int, solver: str, time_limit_s: float, threads: int,
                       seed: int) -> tuple[Plan | None, float]:
    """Order moves on the best plan, then the order search for the bound (and a leaf's plan); each
    order they propose is solved exactly with the order fixed and kept only if cheaper."""
    from accelsim.errors import InfeasibleError

    def cost(p: Plan | None) -> float:
        return math.inf if p is None else p.non_compulsory_bytes(problem)

    def fixed(order: list[int]) -> Plan | None:
        """The order's best plan, or None if the solver found none in time (``best`` stays)."""
        if best is not None and list(order) == list(best.order):
            return None  # nothing new to solve
        try:
            res = solve_cosma(problem, capacity_bytes, mode="fixed", order=order, solver=solver,
                              time_limit_s=time_limit_s, threads=threads, seed=seed, static_bound=False)
        except InfeasibleError:
            return None
        if res.meta.get("wall_capped"):
            meta["wall_capped"] = True
        return res.plan

    if move_evaluations and best is not None and cost(best) > math.ceil(bound - 1e-6):
        moved = improve_order(problem, capacity_bytes, list(best.order), max_evaluations=move_evaluations)
        meta["order_moves"] = {"evaluations": moved.evaluations, "moves": moved.moves, "bound": moved.bound_bytes}
        if moved.moves and moved.bound_bytes < cost(best):
            plan = fixed(moved.order)
            meta["order_moves"]["plan_bytes"] = None if plan is None else cost(plan)
            best = plan if cost(plan) < cost(best) else best
    if bound_nodes and cost(best) > math.ceil(bound - 1e-6):
        search = order_search_bound(problem, capacity_bytes, max_nodes=bound_nodes,
                                    upper_bytes=None if best is None else int(cost(best)),
                                    wall_limit_s=milp.wall_cap_s(time_limit_s),
                                    prefer_order=None if best is None else list(best.order))
        bound = max(bound, float(search.bytes))
        meta["order_search"] = {"bound": search.bytes, "nodes": search.nodes, "open": search.open_nodes,
                                "closed": search.closed, "at_leaf": search.at_leaf}
        if search.wall_capped:
            meta["wall_capped"] = True
        meta["lower_bound"] += ", raised by order search (mappers/order_search.py)"
        if search.leaf_order is not None:  # the cheapest schedules the search left: solve one of them exactly
            plan = fixed(search.leaf_order)
            meta["order_search"]["leaf_plan_bytes"] = None if plan is None else cost(plan)
            best = plan if cost(plan) < cost(best) else best
    return best, bound


def _one_pass(problem: MemoryProblem, capacity_bytes: int, order: list[int], piece_ops: int,
              commit_ops: int | None, shift: int | None, solver: str, time_limit_s: float, threads: int,
              seed: int, wall_deadline: float, order_hints: bool = False) -> tuple[Plan | None, dict]:
    """One sweep of piece solves along ``order``; None if a piece found nothing in time."""
    if commit_ops is None:
        starts = narrow_cuts(problem, order, piece_ops, shift)
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
    capped = False
    used = 0.0
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
        state = dict(ops=ops, entry=entry, in_dram=in_dram, loaded=loaded, needed_after=needed_after,
                     exit_cost=True)
        model = CosmaModel(problem, capacity_bytes, **state)
        # optional warm start: the base order inside the piece (a partial hint the solver completes or drops).
        # Off: measured worse (PNASNet-5 activations at M_R, 30-operator pieces, 60 nominal s: 1769248 B with
        # the hint, 413952 B without; the hint steers each piece to the base order's spills)
        hint = {model.x[o, i]: 1 for i, o in enumerate(window) if (o, i) in model.x} if order_hints else None
        res = free_res = milp.solve(model.m, solver, per_piece_s, hint, threads, seed,
                                    wall_limit_s=wall_deadline - time.perf_counter())
        capped |= res.wall_capped
        used += res.budget_used_s
        if res.values is None:  # retry with the base order fixed inside the piece
            model = CosmaModel(problem, capacity_bytes, order=window, **state)
            res = milp.solve(model.m, solver, per_piece_s, None, threads, seed,
                             wall_limit_s=wall_deadline - time.perf_counter())
            capped |= res.wall_capped
            used += res.budget_used_s
        if res.values is None:
            return None, {"pieces": k, "status": statuses + [res.status], "wall_capped": capped,
                      "used_s": used}
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
    whole = free_res.best_bound if k == 1 and commit_ops is None else None  # the free-order model's bound
    return plan_from_residency(problem, full_order, resident, spills), {"pieces": k, "status": statuses,
                                                                        "whole_bound": whole, "wall_capped": capped,
                                                                        "used_s": used}
