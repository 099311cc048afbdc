"""Importers: Hugging Face config.json -> ModelConfig; ONNX model -> Graph (local files only)."""
