"""The embedded stack of `relay dev` / `relay demo`: broker, SMTP sink, webhook sink, worker."""
