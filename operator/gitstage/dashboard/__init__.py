"""The registry dashboard: read-only pages over what the operator (or `gitstage ui`) holds.

`inputs` (what a provider hands over), `views` (what each page shows), `forges` (commit links)
and `pages` (HTML) are pure; `server` serves them with aiohttp; `local` is the provider of
`gitstage ui`, reading repositories through the registry core and the mirror.
"""
