"""Mappers: map(graph, hardware, **options) -> Mapping, or an error that says why nothing fits."""
