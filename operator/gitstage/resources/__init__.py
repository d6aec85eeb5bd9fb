"""The ModelRegistry custom resource: pydantic models are the single source of its CRD schema."""
