"""Find a model by name or file: the zoo, a ModelConfig YAML/JSON, or a Hugging Face config.json.

Why apart from ``workloads.config``: the Hugging Face importer builds ModelConfigs, so the
loader that dispatches to it cannot live in the module the importer imports.
"""
from __future__ import annotations

from pathlib import Path

from accelsim.errors import AccelsimError
from accelsim.yamlio import path_exists, read_yaml
from workloads.config import ModelConfig, config_from_dict, zoo_paths
from workloads.importers.hf_config import config_from_hf_file


def load_model(name_or_path: str | Path) -> ModelConfig:
    """A zoo model by name, or by path a ModelConfig YAML/JSON file or a Hugging Face ``config.json``.

    A ``.json`` file is a Hugging Face config when it has ``model_type`` (every transformers
    config does), and an accelsim ModelConfig when it has ModelConfig fields instead.
    """
    key = str(name_or_path)
    zoo = zoo_paths()
    if key in zoo:
        path = zoo[key]
    else:
        path = Path(key)
        if not key or not path_exists(path):
            raise AccelsimError(f"unknown model {key!r} (neither a zoo name nor an existing file)", field="model",
                                allowed=sorted(zoo))
    data = read_yaml(path)  # YAML is a superset of JSON; also rejects directories and bad syntax
    if path.suffix == ".json":
        if isinstance(data, dict) and "model_type" in data:
            return config_from_hf_file(path)
        if not (isinstance(data, dict) and set(data) & set(ModelConfig.model_fields)):
            raise AccelsimError("neither a Hugging Face config.json (no model_type) nor an accelsim ModelConfig "
                                "(no ModelConfig fields)", source=str(path))
    return config_from_dict(data, source=str(path))
