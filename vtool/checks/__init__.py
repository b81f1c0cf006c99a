"""Data contracts: the `checks:` rules of vtool.yaml, streaming table readers and results keyed by (check, oid)."""
