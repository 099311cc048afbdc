"""Tiling mapper: loop nests for GEMMs and convolutions on multi-level memories.

``search`` (branch and bound, ``search.py``) chooses per storage level the tile of every rank,
the loop order and the spatial unrolling; ``accelsim.engines.loopnest`` costs the result.
"""
from mappers.tiling.search import OBJECTIVES, SearchResult, objective_key, search  # noqa: F401
