"""Command-line entry points; each command module registers itself on the root group."""
