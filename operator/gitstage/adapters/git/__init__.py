"""The git adapter: reads a GTO registry in-process (pygit2, the ref files), writes and pushes tags,
and fetches one commit shallowly with the git CLI; git credentials live here (credentials.py)."""
