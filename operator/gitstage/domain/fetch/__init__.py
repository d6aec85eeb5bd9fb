"""Where an artifact's bytes are: artifacts.yaml entries, links, DVC files, the fetch manifest."""
