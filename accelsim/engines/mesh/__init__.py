"""Wafer-scale mesh engine (hardware kind ``mesh``): network simulator, collectives, kernels, LLM costs.

Importing the package registers the engine with ``accelsim.engines.registry``.
"""
from accelsim.engines.mesh.engine import MeshEngine
from accelsim.engines.registry import register_engine

register_engine(MeshEngine())
