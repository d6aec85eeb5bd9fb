"""The dev cluster's error: a component failed to start; the message names it."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """A component failed to start; the message ends with the tail of its log."""
