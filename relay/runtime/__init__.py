"""The worker runtime: the Faust app, its tables and topics, and what the agents call."""
