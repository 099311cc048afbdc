"""Mixture-of-Experts: routing statistics and the MoE feed-forward as Einsums.

The question peers get wrong is how much expert weight a step must read. With T tokens each
routed to k of E experts, every expert that receives at least one token has its weights read
once; the rest are not read at all. Under uniform top-k routing each expert is missed by one
token with probability 1 - k/E (k distinct experts out of E), independently across tokens, so

    E[distinct experts] = E * (1 - (1 - k/E)^T)

which is k at T = 1 and approaches E as T grows. Decode at batch 1 on Mixtral (E=8, k=2) reads
2 experts per layer; at batch 16 it reads 7.92 on average. ``simulate_distinct_experts`` checks
the formula by seeded Monte Carlo; ``route`` also handles a Zipf-skewed popularity (seeded
sampling without replacement, Plackett-Luce via the Gumbel top-k trick) or a given histogram,
and expert capacity (tokens over capacity are dropped, as in GShard / Switch).

Graph form (per device, see ``moe_ffn``): router GEMM, top-k selection, gate normalisation,
dispatch of ``A = T*k`` token-expert slots, the experts as masked grouped GEMMs
``Y[a,f] = sum_{e,h} M[a,e] X[a,h] W[e,h,f]`` (M one-hot: slot a goes to expert e), the gated
combine back to tokens, the shared experts, and the tensor-parallel all-reduce. The expert
Einsums carry ``flop_fraction = processed / (A * E)`` (only the one-hot's nonzeros compute, minus
dropped slots) and ``touched = {expert weights: distinct / E}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.ir import OpKind, Tensor, TensorRole
from workloads.builder import BlockBuilder, Dims, dense_ffn


@dataclass(frozen=True)
class Routing:
    """Where one step's T tokens go: per-expert token counts (expected or sampled)."""

    tokens: int
    experts: int
    top_k: int
    tokens_per_expert: tuple[float, ...]  # before capacity
    distinct_experts: float  # experts receiving >= 1 token (expected value for uniform)
    processed: float  # token-expert assignments computed (after capacity drops)
    capacity: int | None
    source: str

    @property
    def assignments(self) -> int:
        return self.tokens * self.top_k

    @property
    def dropped(self) -> float:
        return self.assignments - self.processed

    @property
    def max_load(self) -> float:
        return max(self.tokens_per_expert)


def expected_distinct_experts(tokens: int, experts: int, top_k: int) -> float:
    """E * (1 - (1 - k/E)^T): expected experts touched by T tokens under uniform top-k routing."""
    _check(tokens, experts, top_k)
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def _check(tokens: int, experts: int, top_k: int) -> None:
    for label, v in (("tokens", tokens), ("moe.num_experts", experts), ("moe.top_k", top_k)):
        if not isinstance(v, (int, np.integer)) or v <= 0:
            raise AccelsimError(f"must be a positive integer, got {v!r}", field=label)
    if top_k > experts:
        raise AccelsimError(f"top_k ({top_k}) exceeds the number of experts ({experts})", field="moe.top_k")


def zipf_popularity(experts: int, exponent: float) -> np.ndarray:
    """Expert popularity p_i proportional to 1 / i^exponent (exponent 0 is uniform)."""
    p = 1.0 / np.arange(1, experts + 1, dtype=float) ** exponent
    return p / p.sum()


def sample_assignments(tokens: int, experts: int, top_k: int, popularity: np.ndarray | None = None,
                       seed: int = 0) -> np.ndarray:
    """``[tokens, top_k]`` distinct experts per token, sampled without replacement with
    probability proportional to ``popularity`` (Gumbel top-k = sequential sampling)."""
    _check(tokens, experts, top_k)
    rng = np.random.default_rng(seed)
    logp = np.zeros(experts) if popularity is None else np.log(popularity)
    keys = logp + rng.gumbel(size=(tokens, experts))
    return np.argpartition(-keys, top_k - 1, axis=1)[:, :top_k]


# Bounds on the Monte Carlo's work, checked before it starts: one trial holds tokens x experts
# Gumbel keys (2**24 doubles = 128 MiB), and all trials together draw at most 10**9 of them
# (tens of seconds); past that the closed form expected_distinct_experts is the tool.
MAX_DRAWS_PER_TRIAL = 2**24
MAX_DRAWS = 10**9


def check_monte_carlo(tokens: int, experts: int, top_k: int, trials: int) -> None:
    """One clear error, before any allocation, when a Monte Carlo would be too large."""
    _check(tokens, experts, top_k)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise AccelsimError(f"must be a positive integer, got {trials!r}", field="trials")
    if tokens * experts > MAX_DRAWS_PER_TRIAL:
        raise AccelsimError(f"a trial of {tokens:,} tokens x {experts:,} experts draws more than "
                            f"{MAX_DRAWS_PER_TRIAL:,} keys; use the closed form (trials 0)", field="trials")
    if tokens * experts * trials > MAX_DRAWS:
        raise AccelsimError(f"{trials:,} trials of {tokens:,} tokens x {experts:,} experts draw "
                            f"{tokens * experts * trials:,} keys, more than {MAX_DRAWS:,}", field="trials",
                            allowed=f"at most {max(1, MAX_DRAWS // (tokens * experts)):,} trials here")


def simulate_distinct_experts(tokens: int, experts: int, top_k: int, trials: int = 2000, seed: int = 0,
                              popularity: np.ndarray | None = None) -> tuple[float, float]:
    """Monte Carlo mean and standard error of the distinct experts T tokens touch.

    Each trial draws, for every token, top_k distinct experts (Gumbel top-k, i.e. sampling
    without replacement proportional to ``popularity``; uniform when None). Vectorised in chunks.
    """
    check_monte_carlo(tokens, experts, top_k, trials)
    rng = np.random.default_rng(seed)
    logp = np.zeros(experts) if popularity is None else np.log(popularity)
    counts = []
    chunk = max(1, 2_000_000 // (tokens * experts))
    done = 0
    while done < trials:
        n = min(chunk, trials - done)
        keys = logp + rng.gumbel(size=(n, tokens, experts))
        chosen = np.argpartition(-keys, top_k - 1, axis=2)[:, :, :top_k].reshape(n, -1)
        hit = np.zeros((n, experts), dtype=bool)
        hit[np.arange(n)[:, None], chosen] = True
        counts.append(hit.sum(axis=1))
        done += n
    c = np.concatenate(counts).astype(float)
    return float(c.mean()), float(c.std(ddof=1) / math.sqrt(trials)) if trials > 1 else 0.0


def _capacity(tokens: int, experts: int, top_k: int, capacity_factor: float | None) -> int | None:
    if capacity_factor is None:
        return None
    # GShard / Switch Transformer: capacity = capacity_factor * tokens * k / experts, rounded up
    return max(1, math.ceil(capacity_factor * tokens * top_k / experts))


def _binomial_min_mean(n: int, p: float, cap: int) -> float:
    """E[min(X, cap)] for X ~ Binomial(n, p), exactly (log-space pmf)."""
    if cap >= n:
        return n * p
    ks = np.arange(0, cap)
    logpmf = (np.vectorize(math.lgamma)(n + 1) - np.vectorize(math.lgamma)(ks + 1)
              - np.vectorize(math.lgamma)(n - ks + 1) + ks * math.log(p) + (n - ks) * math.log1p(-p)) \
        if 0 < p < 1 else None
    if logpmf is None:
        return float(min(n, cap)) if p >= 1 else 0.0
    pmf = np.exp(logpmf)
    # E[min(X, cap)] = sum_{k<cap} k P(k) + cap * P(X >= cap)
    return float((ks * pmf).sum() + cap * max(0.0, 1.0 - pmf.sum()))


def route(tokens: int, experts: int, top_k: int, *, distribution: str = "uniform", zipf_exponent: float = 1.0,
          histogram: list[int] | None = None, capacity_factor: float | None = None, seed: int = 0) -> Routing:
    """Routing statistics for one step of ``tokens`` tokens.

    ``uniform``: expected values (tokens per expert T*k/E, distinct experts by the formula,
    processed assignments under capacity by the exact binomial expectation). ``zipf``: one seeded
    sample with popularity ~ 1/i^s. ``histogram``: counts per expert as given (must sum to T*k).
    """
    _check(tokens, experts, top_k)
    cap = _capacity(tokens, experts, top_k, capacity_factor)
    if histogram is not None:
        distribution = "histogram"
    if distribution == "uniform":
        per = tokens * top_k / experts
        distinct = expected_distinct_experts(tokens, experts, top_k)
        processed = tokens * top_k if cap is None else experts * _binomial_min_mean(tokens, top_k / experts, cap)
        return Routing(tokens, experts, top_k, (per,) * experts, distinct, processed, cap, "uniform expected")
    if distribution == "zipf":
        chosen = sample_assignments(tokens, experts, top_k, zipf_popularity(experts, zipf_exponent), seed)
        counts = np.bincount(chosen.ravel(), minlength=experts)
        source = f"zipf s={zipf_exponent} seed={seed}"
    elif distribution == "histogram":
        counts = np.asarray(histogram, dtype=int)
        if counts.shape != (experts,) or (counts < 0).any():
            raise AccelsimError(f"needs {experts} non-negative counts, got {histogram!r}", field="histogram")
        if (counts > tokens).any():  # a token picks k distinct experts, so an expert gets at most T of them
            raise AccelsimError(f"an expert can receive at most {tokens} tokens (each token picks {top_k} distinct "
                                f"experts), got {int(counts.max())}", field="histogram")
        if counts.sum() != tokens * top_k:
            raise AccelsimError(f"counts sum to {counts.sum()}, but {tokens} tokens x top-{top_k} make "
                                f"{tokens * top_k} assignments", field="histogram")
        source = "histogram"
    else:
        raise AccelsimError(f"unknown routing distribution {distribution!r}", field="distribution",
                            allowed=["uniform", "zipf", "histogram"])
    processed = int(counts.sum() if cap is None else np.minimum(counts, cap).sum())
    return Routing(tokens, experts, top_k, tuple(float(c) for c in counts), float((counts > 0).sum()), processed,
                   cap, source)


def moe_ffn(bb: BlockBuilder, x: Tensor, D: Dims, routing: Routing) -> Tensor:
    """The MoE feed-forward of one layer into ``bb`` (a transformer BlockBuilder); see module doc."""
    cfg = bb.cfg
    moe = cfg.moe
    E, k = moe.num_experts, moe.top_k
    T = D.b * D.s
    if routing.tokens != T or routing.experts != E or routing.top_k != k:
        raise AccelsimError(f"routing is for {routing.tokens} tokens, {routing.experts} experts, top-{routing.top_k}; "
                            f"this layer has {T} tokens, {E} experts, top-{k}", field="routing")
    if moe.expert_ffn_size % D.tp:
        raise AccelsimError(f"moe.expert_ffn_size ({moe.expert_ffn_size}) is not divisible by tp {D.tp}", field="tp")
    f = moe.expert_ffn_size // D.tp
    A = T * k
    sz = dict(b=D.b, s=D.s, d=D.d, x=E, j=k, a=A, f=f)
    W, I = TensorRole.WEIGHT, TensorRole.INPUT
    logits = bb.linear("moe.router", x, "bsd", "moe.w_router", "dx", "bsx", sz, kind="router")
    if moe.router_bias:
        logits = bb.pointwise("moe.router_bias", OpKind.ADD, logits, bb.t("moe.w_router_bias", "x", (E,), W), "bsx",
                              sz, b_dims="x")
    top = bb.t("moe.topk", "bsj", (D.b, D.s, k))
    bb.add("moe.topk", top, "bsj", [(logits, "bsx")], {c: sz[c] for c in "bsxj"}, OpKind.MAX, kind="topk")
    gates = bb.pointwise("moe.gates", OpKind.EXP, top, None, "bsj", sz, kind=moe.gating)
    # dispatch map D[a,b,s] and one-hot expert map M[a,x]: index lists in practice (touched = one entry per slot)
    dmap = bb.t("moe.dispatch_map", "abs", (A, D.b, D.s), I, dtype=4)
    xd = bb.t("moe.x_dispatch", "ad", (A, D.d))
    bb.add("moe.dispatch", xd, "ad", [(x, "bsd"), (dmap, "abs")], {c: sz[c] for c in "absd"}, OpKind.COPY,
           kind="dispatch", touched={dmap.name: 1.0 / T})
    onehot = bb.t("moe.expert_map", "ax", (A, E), I, dtype=4)
    frac = routing.processed / (A * E)
    touched_w = routing.distinct_experts / E
    # Per-expert token counts for engines that lower the experts to one GEMM each: sampled or
    # given counts exactly (after capacity); the uniform expectation as ``distinct_experts``
    # experts sharing ``processed`` assignments equally.
    expert_tokens = None if routing.source == "uniform expected" else tuple(
        float(c if routing.capacity is None else min(c, routing.capacity)) for c in routing.tokens_per_expert)
    attrs = dict(kind="moe_expert", flop_fraction=frac, distinct_experts=routing.distinct_experts,
                 processed_assignments=routing.processed, expert_tokens=expert_tokens, routing=routing.source)

    def expert_gemm(name: str, inp: Tensor, in_dims: str, w_name: str, w_dims: str, out_dims: str) -> Tensor:
        w = bb.t(w_name, w_dims, tuple(sz[c] for c in w_dims), W)
        y = bb.t(name, out_dims, tuple(sz[c] for c in out_dims))
        ext = {c: sz[c] for c in dict.fromkeys(in_dims + w_dims + out_dims)}
        return bb.add(name, y, out_dims, [(inp, in_dims), (onehot, "ax"), (w, w_dims)], ext, OpKind.MAC,
                      touched={w.name: touched_w, onehot.name: 1.0 / E, inp.name: routing.processed / A},
                      **attrs)

    up = expert_gemm("moe.up", xd, "ad", "moe.w_up", "xdf", "af")
    if cfg.ffn_gated:
        gate = expert_gemm("moe.gate", xd, "ad", "moe.w_gate", "xdf", "af")
        act = bb.pointwise("moe.act", OpKind.ACTIVATION, gate, None, "af", sz, kind=cfg.activation,
                           flop_fraction=routing.processed / A)
        h = bb.pointwise("moe.gated", OpKind.MUL, act, up, "af", sz, flop_fraction=routing.processed / A)
    else:
        h = bb.pointwise("moe.act", OpKind.ACTIVATION, up, None, "af", sz, kind=cfg.activation,
                         flop_fraction=routing.processed / A)
    sz2 = dict(sz, f=f)
    w_down = bb.t("moe.w_down", "xfd", (E, f, D.d), W)
    yd = bb.t("moe.down", "ad", (A, D.d))
    bb.add("moe.down", yd, "ad", [(h, "af"), (onehot, "ax"), (w_down, "xfd")], {c: sz2[c] for c in "axfd"},
           OpKind.MAC, touched={w_down.name: touched_w, onehot.name: 1.0 / E, h.name: routing.processed / A},
           **attrs)
    cmap = bb.t("moe.combine_map", "bsa", (D.b, D.s, A), I)
    y = bb.t("moe.combine", "bsd", (D.b, D.s, D.d))
    bb.add("moe.combine", y, "bsd", [(yd, "ad"), (cmap, "bsa"), (gates, "bsj")], {c: sz[c] for c in "bsadj"},
           OpKind.MAC, kind="combine", flop_fraction=1.0 / (T * k), touched={cmap.name: 1.0 / T})
    if moe.shared_experts:
        shared = dense_ffn(bb, x, D, moe.shared_size // D.tp if moe.shared_size % D.tp == 0 else
                            _bad_shared(moe.shared_size, D.tp), name="moe.shared", allreduce=False)
        if moe.shared_expert_gate:  # Qwen2-MoE: sigmoid(x W_g), W_g [hidden, 1], scales the shared output
            g = bb.linear("moe.shared_gate", x, "bsd", "moe.w_shared_gate", "d", "bs", sz, kind="gemv")
            g = bb.pointwise("moe.shared_gate_act", OpKind.ACTIVATION, g, None, "bs", sz, kind="sigmoid")
            shared = bb.pointwise("moe.shared_gated", OpKind.MUL, shared, g, "bsd", sz, b_dims="bs")
        y = bb.pointwise("moe.add_shared", OpKind.ADD, y, shared, "bsd", sz)
    return bb.allreduce("moe.allreduce", y, "bsd", sz, D.tp)


def _bad_shared(size: int, tp: int) -> int:
    raise AccelsimError(f"shared expert FFN size ({size}) is not divisible by tp {tp}", field="tp")
