"""gitstage: GTO-exact model registry resolution and a Kubernetes operator that serves it."""

__version__ = "0.1.0"
