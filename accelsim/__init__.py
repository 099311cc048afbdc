"""accelsim: cycle-level accelerator models, exact mappers and LLM-scale workloads."""
from accelsim.errors import AccelsimError

__all__ = ["AccelsimError"]
__version__ = "0.1.0"
