"""The solver-neutral integer linear model and a solve's result (``mappers.milp`` solves it).

Why its own module: the COSMA model builders and every back-end (``milp`` for CP-SAT and the
dispatch, ``milp_highs``, ``milp_cbc``) share these types, and the back-ends must not import the
dispatcher that imports them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

Literal = tuple[int, bool]  # (binary variable index, value it must take to enforce the row)


@dataclass
class LinearModel:
    """Variables with integer bounds, rows ``sum(coef * var) (<=|>=|==) rhs`` and a minimised objective."""

    names: list[str] = field(default_factory=list)
    lb: list[int] = field(default_factory=list)
    ub: list[int] = field(default_factory=list)
    rows: list[tuple[dict[int, int], str, int, tuple[Literal, ...]]] = field(default_factory=list)
    objective: dict[int, int] = field(default_factory=dict)
    objective_constant: int = 0
    # groups of (start variable, fixed length, presence binary): present intervals must not overlap
    no_overlaps: list[list[tuple[int, int, int]]] = field(default_factory=list)

    def var(self, name: str, lb: int = 0, ub: int = 1) -> int:
        if lb > ub:
            raise ValueError(f"variable {name}: empty domain [{lb}, {ub}]")
        self.names.append(name)
        self.lb.append(int(lb))
        self.ub.append(int(ub))
        return len(self.names) - 1

    def add(self, coefs: dict[int, int], sense: str, rhs: int, enforce: tuple[Literal, ...] = ()) -> None:
        if sense not in ("<=", ">=", "=="):
            raise ValueError(sense)
        coefs = {v: c for v, c in coefs.items() if c}
        self.rows.append((coefs, sense, int(rhs), tuple(enforce)))

    def no_overlap(self, items: list[tuple[int, int, int]]) -> None:
        """Intervals ``[start, start + length)`` whose presence binary is 1 may not share a point."""
        self.no_overlaps.append([(int(v), int(n), int(p)) for v, n, p in items])

    def with_pairs(self) -> LinearModel:
        """A copy with every no-overlap group replaced by order binaries and big-M rows (for the
        MILP back-ends, which have no interval constraints). New variables come after the old ones."""
        out = LinearModel(list(self.names), list(self.lb), list(self.ub), list(self.rows), dict(self.objective),
                          self.objective_constant)
        for g, group in enumerate(self.no_overlaps):
            for (va, na, pa), (vb, nb, pbv) in combinations(group, 2):
                y = out.var(f"ord[{g},{va},{vb}]")
                out.add({va: 1, vb: -1}, "<=", -na, ((pa, True), (pbv, True), (y, True)))
                out.add({vb: 1, va: -1}, "<=", -nb, ((pa, True), (pbv, True), (y, False)))
        return out

    def extend_hint(self, expanded: LinearModel, values: list[int]) -> list[int]:
        """``values`` of this model plus the order binaries ``with_pairs`` added (1 when a lies below b)."""
        out = list(values)
        for group in self.no_overlaps:
            for (va, _, _), (vb, _, _) in combinations(group, 2):
                out.append(int(values[va] < values[vb]))
        return out[:expanded.n_vars]

    @property
    def n_vars(self) -> int:
        return len(self.names)

    def is_binary(self, v: int) -> bool:
        return self.lb[v] == 0 and self.ub[v] == 1

    def value(self, coefs: dict[int, int], values: list[int]) -> int:
        return sum(c * values[v] for v, c in coefs.items())

    def violations(self, values: list[int]) -> list[str]:
        """Rows a full assignment breaks (used to check warm starts and decoded solutions)."""
        bad = []
        for v in range(self.n_vars):
            if not self.lb[v] <= values[v] <= self.ub[v]:
                bad.append(f"{self.names[v]}={values[v]} outside [{self.lb[v]}, {self.ub[v]}]")
        for i, (coefs, sense, rhs, enforce) in enumerate(self.rows):
            if any(values[v] != int(want) for v, want in enforce):
                continue
            lhs = self.value(coefs, values)
            ok = lhs <= rhs if sense == "<=" else lhs >= rhs if sense == ">=" else lhs == rhs
            if not ok:
                terms = " + ".join(f"{c}*{self.names[v]}" for v, c in coefs.items())
                bad.append(f"row {i}: {terms} {sense} {rhs} (lhs {lhs})")
        for g, group in enumerate(self.no_overlaps):
            present = sorted((values[v], n, v) for v, n, p in group if values[p])
            for (s0, n0, v0), (s1, _, v1) in zip(present, present[1:]):
                if s0 + n0 > s1:
                    bad.append(f"no-overlap {g}: {self.names[v0]}={s0}+{n0} overlaps {self.names[v1]}={s1}")
        return bad

    def objective_value(self, values: list[int]) -> int:
        return self.value(self.objective, values) + self.objective_constant

    def big_m(self, coefs: dict[int, int], sense: str, rhs: int) -> tuple[int, int]:
        """Largest amount by which ``coefs . x`` can exceed (or fall short of) ``rhs`` within the
        bounds: the M of a big-M row, so no hand-tuned M can cut off solutions."""
        hi = sum(c * (self.ub[v] if c > 0 else self.lb[v]) for v, c in coefs.items())
        lo = sum(c * (self.lb[v] if c > 0 else self.ub[v]) for v, c in coefs.items())
        return max(0, hi - rhs), max(0, rhs - lo)


@dataclass
class SolveResult:
    """What a back-end found: an assignment (or None), its status and the proven bound."""

    solver: str
    status: str  # optimal | feasible | infeasible | unknown
    values: list[int] | None
    objective: float | None
    best_bound: float | None
    solve_s: float
    budget_used_s: float | None = None  # nominal seconds used (CP-SAT: deterministic time / milp.CPSAT_DET_PER_CPU_S;
    # the MILP back-ends have no deterministic limit: their wall seconds, so their budgets depend on the load)
    wall_capped: bool = False  # stopped by the wall-clock safety net, not by its deterministic budget

    def __post_init__(self) -> None:
        if self.budget_used_s is None:
            self.budget_used_s = self.solve_s

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.best_bound)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """(objective - bound) / objective, 0 when both are 0; None without an incumbent."""
    if objective is None:
        return None
    if bound is None:
        return 1.0 if objective > 0 else 0.0
    bound = min(bound, objective)
    if objective <= 0:
        return 0.0
    return max(0.0, (objective - bound) / objective)
