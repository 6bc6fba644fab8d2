"""Delivery adapters: the I/O that carries a notification to a partner (webhook, email)."""
