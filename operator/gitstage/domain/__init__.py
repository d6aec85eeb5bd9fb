"""The pure core: no I/O. One folder per subject (see DEVELOPMENT.md, "Code map"):

registry/  GTO's registry as data: names and tags, the fold of tags into state, views, JSON
write/     planning the tags that register, assign, unassign, deregister and deprecate
fetch/     where an artifact's bytes are: artifacts.yaml entries, links, DVC files, manifests
policy/    promotion policies (.gitstage/policy.yaml) and where a tag's signature starts
check/     `gitstage check`'s findings
webhooks/  forge webhook payloads and their signatures
repo_urls  repository URLs: one key per repository, userinfo split off and redacted
"""
