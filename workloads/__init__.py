"""Graph builders: transformers, MoE, attention cascades, CNNs; the model zoo and importers."""
