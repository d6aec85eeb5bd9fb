"""A loopback port for a server the test starts later: `gitstage.dev.ports.reserve_port` (the
local cluster reserves its ports the same way), without a bind-and-release race."""

from __future__ import annotations

from gitstage.dev.ports import reserve_port

__all__ = ["reserve_port"]
