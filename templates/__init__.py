"""The jinja2 templates of relay emails and web pages (package data: relay.templates)."""
