"""`/healthz` (is the store reachable?) and `/metrics` (Prometheus text, computed from the store).

Every number `/metrics` shows is read from the store at the scrape (`ThreadStore.counts`), so any
number of servers and workers on one store report the same totals and a restart loses none: nothing
is counted in this process's memory. Each scrape builds a fresh registry. It needs a `read` key
(model names and token use are the operator's business); `/healthz` needs none and says nothing
but whether the store answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel

from ..store import StoreCounts
from ._auth import Caller, config_of, require
from ._bodies import error_responses

__all__ = ["Health", "metrics_text", "router"]

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    """The store answered."""

    status: Literal["ok"] = "ok"


@router.get("/healthz", operation_id="health", summary="Is the store reachable?", responses=error_responses(503))
async def health(request: Request) -> Health:
    """200 when the store answers a query, 503 when it does not. No key needed."""
    await config_of(request).runtime.list(limit=1)
    return Health()


class _Totals(Collector):
    """The store's totals as Prometheus metric families (collected once, into a registry of one scrape)."""

    def __init__(self, counts: StoreCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        threads = GaugeMetricFamily("threadloom_threads", "Threads by status.", labels=["status"])
        for status, number in counts.threads.items():
            threads.add_metric([status], number)
        yield threads
        steps = CounterMetricFamily("threadloom_model_steps", "Model calls by model.", labels=["model"])
        tokens = CounterMetricFamily(
            "threadloom_model_tokens", "Model tokens by model and kind.", labels=["model", "kind"]
        )
        for model, used in sorted(counts.usage.items()):
            steps.add_metric([model], used.requests)
            tokens.add_metric([model, "input"], used.input_tokens)
            tokens.add_metric([model, "output"], used.output_tokens)
            tokens.add_metric([model, "cached"], used.cached_tokens)
        yield steps
        yield tokens
        yield CounterMetricFamily(
            "threadloom_tool_errors", "Tool runs that ended in an error.", value=counts.tool_errors
        )
        yield SummaryMetricFamily(
            "threadloom_human_wait_seconds",
            "How long approvals and human requests waited for their answer (answered ones).",
            count_value=counts.answered,
            sum_value=counts.waited_seconds,
        )


def metrics_text(counts: StoreCounts) -> bytes:
    """The Prometheus text exposition of a store's totals, from a registry made for this call."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Totals(counts))
    return generate_latest(registry)


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}, "description": "Metrics"},
        **error_responses(401, 403, 503),
    },
)
async def metrics(request: Request, _: Annotated[Caller, Depends(require("read"))]) -> Response:
    """Threads by status, model steps and tokens by model, tool errors, and how long people took to answer."""
    store = await config_of(request).runtime.store()
    return Response(metrics_text(await store.counts()), media_type=CONTENT_TYPE_LATEST)
