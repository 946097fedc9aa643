"""Configuration: matrix files (YAML with positions, pydantic schema, cross-checks), their expansion into
cells, the repository's image recipes and folders, and the cells as a CI job matrix.

May import: the standard library, pydantic, yaml, ``harness.errors``, ``harness.store``, ``harness.live``
(the vocabulary).
"""
