"""GTO's registry as data: tag grammar, events, the fold into state, views, gto's JSON."""
