"""The HTTP side of the worker: API, dashboard and metrics, served on the worker's loop."""
