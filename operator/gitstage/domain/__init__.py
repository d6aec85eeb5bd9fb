"""The pure domain: tag grammar, events, registry state and resolution views. No I/O here."""
