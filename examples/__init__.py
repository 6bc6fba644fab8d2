"""Sample document events, the seed document among them (package data: relay.examples)."""
