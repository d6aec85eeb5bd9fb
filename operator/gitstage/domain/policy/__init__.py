"""Promotion policies and what a signed tag's signature covers."""
