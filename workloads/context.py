"""What lengths a model may run, and how many keys each position attends.

Why one module: three limits decide the key count. A learned position table has rows for at
most ``max_positions`` tokens (a hard limit: no embedding exists past it). A rotary (or
relative) model was trained for ``max_position_embeddings`` tokens; running longer is a
deliberate extension (YaRN, NTK scaling) the user must ask for, never silent. A sliding-window
model (Mistral) attends to the last ``sliding_window`` positions only, so its decode KV read and
its prefill attention FLOPs stop growing with the context.

Window convention (transformers ``masking_utils.sliding_window_overlay``: key ``j`` is visible
to query ``i`` when ``i - W < j <= i``): each query sees at most ``W`` keys, itself included,
and the KV cache keeps ``W`` positions (transformers' sliding-window cache layer, Mistral's
rotating buffer cache of ``sliding_window`` entries, Jiang et al., Mistral 7B, arXiv 2310.06825,
Sec. 2 "Rolling Buffer Cache").
"""
from __future__ import annotations

from accelsim.errors import AccelsimError
from accelsim.fieldchecks import MAX_BATCH, MAX_TOKENS  # the bounds, with their sources
from workloads.config import ModelConfig


def check_lengths(cfg: ModelConfig, phase: str, batch: int, seq: int, context: int, *,
                  allow_long_context: bool = False) -> None:
    """Raise an AccelsimError naming the field unless ``cfg`` can run this phase at these lengths."""
    for label, value, limit in (("batch", batch, MAX_BATCH), ("seq", seq, MAX_TOKENS)):
        if value > limit:
            raise AccelsimError(f"{value} is above the supported {limit:,}", field=label, allowed=f"1..{limit}")
    if phase == "decode" and context + 1 > MAX_TOKENS:
        raise AccelsimError(f"{context} (+1 new token) is above the supported {MAX_TOKENS:,} tokens",
                            field="context", allowed=f"0..{MAX_TOKENS - 1}")
    # prefill uses positions 0..seq-1; decode's new token sits at position ``context``
    needed, field = (seq, "seq") if phase == "prefill" else (context + 1, "context")
    shown = f"seq={seq}" if phase == "prefill" else f"context={context} (+1 new token)"
    if cfg.position == "learned" and needed > cfg.max_positions:
        # a learned table has max_positions rows; a position past it has no embedding: refuse, never clamp
        raise AccelsimError(f"{cfg.name} has learned positions for at most {cfg.max_positions} tokens, got {shown}",
                            field=field)
    limit = cfg.max_position_embeddings
    if limit is not None and cfg.position != "learned" and needed > limit and not allow_long_context:
        raise AccelsimError(f"{cfg.name} was trained for at most {limit} positions, got {shown}; pass "
                            "--allow-long-context (allow_long_context=True) if you extend it (YaRN, NTK scaling)",
                            field=field, allowed=f"at most {limit} tokens")


def attended_keys(cfg: ModelConfig, positions: int) -> int:
    """Keys the last of ``positions`` causal positions attends (and KV cache rows kept)."""
    w = cfg.sliding_window
    return positions if w is None else min(positions, w)


def causal_pairs(s: int, window: int | None) -> int:
    """(query, key) pairs of causal self-attention over ``s`` positions: query ``i`` sees
    ``min(i + 1, W)`` keys, so ``s(s+1)/2`` without a window, the banded
    ``W(W+1)/2 + (s - W) W`` when ``s > W``."""
    if window is None or s <= window:
        return s * (s + 1) // 2
    return window * (window + 1) // 2 + (s - window) * window
