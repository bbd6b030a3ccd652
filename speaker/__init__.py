"""speaker: the asyncio shell (session engines, Speaker, daemon and CLI)."""
