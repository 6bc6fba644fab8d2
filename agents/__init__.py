"""Faust agents: glue between the relay's topics and its pure core."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from relay.runtime.app import Runtime


def install(rt: Runtime) -> None:
    """Register every agent on the runtime's app."""
    from relay.agents import delivery, documents

    documents.install(rt)
    delivery.install(rt)
