"""Matching a policy's applicable scope against partner profiles (DESIGN §5); pure, no I/O."""
