"""I/O at the edges, one package per job; siblings do not import each other (pyproject.toml):

git/     read and write a repository (libgit2 and the git CLI), credentials for git, commits
         fetched shallowly for `gitstage fetch`
mirror/  the polling mirror of a remote repository the operator (and `-r URL`) reads
fetch/   artifact bytes on disk: DVC stores, staging, materializing a located artifact
kube/    the Kubernetes API (the operator only)
metrics  Prometheus counters
"""
