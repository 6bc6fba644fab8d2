"""Sample partners, clearly marked samples (package data: relay.config)."""
