"""Adapters between the pure domain and the outside world (git, Kubernetes)."""
