"""The registry's own files in a repository, by name: GTO's `.gto` config and its annotation index.

A leaf: config.py, index.py and schemas.py import these names from here (so none of them needs
another), and so does the light read path (adapters/git/source.py).
"""

from __future__ import annotations

CONFIG_FILE = ".gto"
INDEX_FILE = "artifacts.yaml"  # the default; `.gto` may name another (RegistryConfig.index)
