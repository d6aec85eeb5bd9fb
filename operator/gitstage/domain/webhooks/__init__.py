"""Forge webhooks: payloads (which repository changed) and their signatures."""
