"""The polling mirror: a local partial copy of a remote repository, kept in sync by shared pollers.

Built on adapters/git (reading); git never imports it.
"""
