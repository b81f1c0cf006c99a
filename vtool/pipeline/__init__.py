"""Pipelines: the stage file, the lock, run records, the environment fingerprint and the lineage graph."""
