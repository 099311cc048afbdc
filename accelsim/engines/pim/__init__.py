"""PIM engine: DRAM command-level simulation, trace checker, AttAcc streams, decode on PIM."""
from accelsim.engines.pim.engine import PimEngine
from accelsim.engines.registry import register_engine

register_engine(PimEngine())
