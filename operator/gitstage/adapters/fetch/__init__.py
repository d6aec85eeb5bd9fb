"""Fetching artifacts: shallow git fetches, DVC remotes, and atomic installation into DEST."""
