"""The git adapter: reads a GTO registry from a repository in-process with pygit2."""
