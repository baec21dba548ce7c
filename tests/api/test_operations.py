"""Health, readiness, metrics, request ids and logs (issue 8)."""

from __future__ import annotations

import json
import logging
import re
import time

import httpx
import pytest
import structlog

from keyplane.api.app import create_app
from keyplane.domain.keyformat import Mode, generate
from keyplane.observability import configure_logging, redact
from keyplane.runtime import Runtime
from keyplane.services.schedule import DeploymentJob
from keyplane.settings import Settings
from tests.conftest import World, bearer


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}


async def test_readiness_reports_redis(settings: Settings, redis_url: str) -> None:
    for url, status, redis_state in (
        (redis_url, 200, "ok"),
        ("redis://127.0.0.1:1/0", 503, "error: unreachable"),
    ):
        runtime = await Runtime.start(
            settings.model_copy(update={"redis_url": url}), migrate=False, background=False
        )
        try:
            transport = httpx.ASGITransport(app=create_app(runtime))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.get("/readyz")
        finally:
            await runtime.close()
        assert response.status_code == status
        assert response.json()["checks"] == {"database": "ok", "redis": redis_state}


async def test_request_ids(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "trace-0123456789"})
    assert given.headers["x-request-id"] == "trace-0123456789"
    for hostile in ("x", "a" * 200, "bad id with spaces"):
        made = await client.get("/healthz", headers={"X-Request-ID": hostile})
        assert made.headers["x-request-id"] != hostile
        assert len(made.headers["x-request-id"]) == 32


async def test_metrics_count_requests_errors_and_decisions(
    client: httpx.AsyncClient, world: World
) -> None:
    key = await world.project_key("project:read")
    project = f"/v1/projects/{world.project_id}"
    await client.get(project, headers=bearer(key))
    await client.get(project, headers=bearer(key))
    await client.get(project + "/conversations", headers=bearer(key))
    await client.get(project, headers=bearer(generate(Mode.LIVE)))
    text = (await client.get("/metrics")).text
    assert (
        'keyplane_requests_total{error="",method="GET",route="/v1/projects/{project_id}",'
        'status="200"} 2.0'
    ) in text
    assert 'error="insufficient_permissions"' in text
    assert 'error="invalid_api_key"' in text
    assert 'keyplane_ratelimit_decisions_total{result="allowed"} 3.0' in text
    assert "keyplane_verification_duration_seconds_count 3.0" in text
    assert 'keyplane_key_cache_total{result="hit"}' in text
    assert "keyplane_flush_lag_seconds" in text
    assert "keyplane_redis_failures_total 0.0" in text
    assert key[8:-6] not in text


async def test_metrics_say_which_deployment_jobs_this_process_ran(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    async def broken() -> None:
        raise RuntimeError("database hiccup")

    failing = DeploymentJob(runtime.sessions, "broken_job", 60, broken)
    runtime.scheduled[failing.name] = failing
    assert await runtime.scheduled["housekeeping"].tick()
    assert not await runtime.scheduled["housekeeping"].tick()  # not its turn again yet
    with pytest.raises(RuntimeError):
        await failing.tick()
    text = (await client.get("/metrics")).text
    assert 'keyplane_job_runs_total{job="housekeeping"} 1.0' in text
    assert 'keyplane_job_failures_total{job="housekeeping"} 0.0' in text
    assert 'keyplane_job_runs_total{job="broken_job"} 1.0' in text
    assert 'keyplane_job_failures_total{job="broken_job"} 1.0' in text
    assert 'keyplane_job_last_run_timestamp_seconds{job="anomaly_detection"} 0.0' in text
    last = re.search(r'keyplane_job_last_run_timestamp_seconds\{job="housekeeping"\} (\S+)', text)
    assert last is not None
    assert abs(float(last.group(1)) - time.time()) < 60


async def test_logs_are_json_with_ids_and_never_a_secret(
    client: httpx.AsyncClient, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(json_format=True)
    try:
        key = await world.project_key("project:read")
        await client.get(f"/v1/projects/{world.project_id}", headers=bearer(key))
        await client.get(
            f"/v1/projects/{world.project_id}?token={key}",  # even when pasted into a URL
            headers={**bearer(key + "x"), "X-Request-ID": "req-abcdefgh"},
        )
        structlog.get_logger("test").warning("oops", detail=f"a key {key} in a message")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        structlog.reset_defaults()
    requests = [line for line in lines if line.get("event") == "request"]
    assert requests[0]["status"] == 200
    assert requests[0]["key_id"].startswith("key_")
    assert requests[1]["request_id"] == "req-abcdefgh"
    assert requests[1]["error"] == "malformed_api_key"
    everything = "\n".join(json.dumps(line) for line in lines)
    assert key[8:-6] not in everything
    assert "[redacted]" in everything


def test_redaction_processor() -> None:
    key = generate(Mode.TEST)
    event = redact(None, "info", {"event": "x", "value": f"before {key} after", "n": 3})
    assert key not in event["value"]
    assert event["value"].startswith("before sk_test_")
    assert event["n"] == 3
    logging.getLogger(__name__).debug("no secret here")
