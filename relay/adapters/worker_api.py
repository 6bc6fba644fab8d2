"""Reading a running worker over its HTTP API, for ``relay status``: ``/readyz``,
``/metrics`` (Prometheus text, parsed by prometheus_client) and, with the operator token,
``/api/v1/dashboard``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from relay.core.errors import WorkerUnreachable

#: Seconds to wait for a worker's answer.
TIMEOUT = 10.0


@dataclass
class WorkerView:
    """What a worker answered: its readiness, its metrics, and the dashboard if asked."""

    url: str
    ready: dict[str, Any]
    #: sample name → [(labels, value)]
    metrics: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)
    dashboard: dict[str, Any] | None = None
    #: Why the dashboard is missing (no token, or the token was refused).
    dashboard_note: str | None = None

    def value(self, name: str, default: float = 0.0) -> float:
        samples = self.metrics.get(name)
        return samples[0][1] if samples else default

    def by_label(self, name: str, label: str) -> dict[str, float]:
        return {labels[label]: v for labels, v in self.metrics.get(name, []) if label in labels}


async def read_worker(url: str, operator_token: str | None) -> WorkerView:
    """Ask the worker at ``url``; :class:`WorkerUnreachable` (one line) if it does not answer."""
    url = url.rstrip("/")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            ready = await _json(http, f"{url}/readyz", ok=(200, 503))
            async with http.get(f"{url}/metrics") as r:
                if r.status != 200:
                    raise WorkerUnreachable(url, f"{url}/metrics answered {r.status}")
                text = await r.text()
            view = WorkerView(url, ready, _samples(text))
            if operator_token is None:
                view.dashboard_note = "set RELAY_OPERATOR_TOKEN for throughput and failures"
                return view
            headers = {"Authorization": f"Bearer {operator_token}"}
            async with http.get(f"{url}/api/v1/dashboard", headers=headers) as r:
                if r.status == 200:
                    view.dashboard = await r.json()
                else:
                    view.dashboard_note = (
                        f"the dashboard answered {r.status}: is RELAY_OPERATOR_TOKEN the "
                        "workers' operator token?"
                    )
            return view
    except aiohttp.ClientConnectorError as e:
        refused = isinstance(e.os_error, ConnectionRefusedError)
        why = "connection refused" if refused else (e.os_error.strerror or str(e.os_error))
        raise WorkerUnreachable(url, f"no relay worker answers at {url} ({why})") from e
    except (aiohttp.ClientError, TimeoutError) as e:
        raise WorkerUnreachable(
            url, f"the worker at {url} did not answer properly ({type(e).__name__})"
        ) from e


async def _json(http: aiohttp.ClientSession, url: str, *, ok: tuple[int, ...]) -> dict[str, Any]:
    async with http.get(url) as r:
        body = await r.text()
        if r.status not in ok:
            raise WorkerUnreachable(url, f"{url} answered {r.status}: is this a relay worker?")
    try:
        data = json.loads(body)
    except ValueError:
        raise WorkerUnreachable(
            url, f"{url} did not answer JSON: is this a relay worker?"
        ) from None
    if not isinstance(data, dict):
        raise WorkerUnreachable(url, f"{url} did not answer a JSON object")
    return data


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return out
