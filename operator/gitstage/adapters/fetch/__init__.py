"""Artifact bytes on disk: DVC stores (dvc_stores.py), staging and atomic installation into DEST,
and materializing an artifact located in a commit's tree (materialize.py)."""
