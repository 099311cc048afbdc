"""The PIM mapper: GEMV weights and KV caches laid over channels, banks and rows (PIM-GPT style).

The layouts live with the PIM engine (``accelsim.engines.pim.layout``), which places a model
itself when it is given no mapping; this module is the mapper's entry point to them. On a device
with a global buffer (AiM), ``best_order`` picks the GEMV loop order (refill the buffer per
register group, or keep each chunk and read partial sums) that simulates faster.
"""
from __future__ import annotations

from accelsim.engines.pim.gb_gemv import GbGemv, best_order  # noqa: F401
from accelsim.engines.pim.layout import GemvLayout, map_gemv, map_gemv_naive, map_kv  # noqa: F401
