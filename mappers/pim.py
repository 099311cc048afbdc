"""The PIM mapper: GEMV weights and KV caches laid over channels, banks and rows (PIM-GPT style).

The layouts live with the PIM engine (``accelsim.engines.pim.layout``), which places a model
itself when it is given no mapping; this module is the mapper's entry point to them.
"""
from __future__ import annotations

from accelsim.engines.pim.layout import GemvLayout, map_gemv, map_gemv_naive, map_kv  # noqa: F401
