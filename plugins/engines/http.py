"""Forward jobs to an upstream job service over HTTP, and learn their outcome one of three ways.

- ``respond``: the upstream answers the submit request with the result (a plain reverse proxy
  with job records): a 2xx body is the result, anything else the failure.
- ``callback``: the upstream gets ``X-Hookgate-Callback-URL`` (a one-shot callback endpoint the
  engine creates through the gateway's own API, with the job's token) and POSTs
  ``{"state": "succeeded"|"failed", "result"|"error"}`` there when done; while it waits the job is
  suspended and holds no slot. ``X-Hookgate-Steps-URL`` takes ``Rule*`` step reports.
- ``poll``: the submit answer carries the upstream's job id (a JSON pointer); a status URL is polled
  with backoff and its states are mapped to ours, then the result is read.

``preset = "windmill"`` fills in Windmill's API: submit to ``/api/w/{ws}/jobs/run/p/{path}``, poll
``/api/w/{ws}/jobs_u/completed/get_result_maybe/{id}``, cancel ``/api/w/{ws}/jobs_u/queue/cancel/{id}``.
Every upstream request carries the job's id and token (``X-Hookgate-Job-Id``,
``X-Hookgate-Job-Token``). An unreachable upstream or a 5xx on submit leaves the job queued and
retried with backoff (``EngineUnavailable``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from gateway.plugin import (
    EngineConfig,
    EngineContext,
    EngineUnavailable,
    Job,
    JobContext,
    Outcome,
    ScriptVersion,
    content_hash,
    declare_options,
)

from ._http_options import HttpFileOptions, HttpOptions, parse_options

__all__ = ["HttpEngine", "create"]


@declare_options(HttpFileOptions)
def create(config: EngineConfig) -> HttpEngine:
    return HttpEngine(config.name, parse_options(config))


class HttpEngine:
    def __init__(self, name: str, options: HttpOptions) -> None:
        self.name = name
        self.options = options
        self._session: aiohttp.ClientSession | None = None
        self._context: EngineContext | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._refs: dict[str, str] = {}
        self._suspended: set[str] = set()

    # --- what it runs -------------------------------------------------------------------------------

    def scripts(self) -> Mapping[str, str]:
        """Exact paths it serves (patterns such as ``u/*`` are matched by ``resolve``)."""
        return {p: self.options.base_url for p in self.options.scripts if not any(c in p for c in "*?[")}

    def resolve(self, path: str) -> ScriptVersion | None:
        if not any(fnmatch.fnmatchcase(path, pattern) for pattern in self.options.scripts):
            return None
        marker = f"{self.name} {self.options.base_url} {path}".encode()
        return ScriptVersion(
            hash=content_hash(marker), engine=self.name, path=path, filename=path, content=marker
        )

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self, context: EngineContext) -> None:
        self._context = context
        connector = aiohttp.TCPConnector(limit=self.options.connections)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=self.options.timeout)
        )

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def free_slots(self) -> int:
        return self.options.concurrency - len(self._tasks) + len(self._suspended & self._tasks.keys())

    def set_suspended(self, job_id: str, suspended: bool) -> None:
        (self._suspended.add if suspended else self._suspended.discard)(job_id)

    def live_logs(self, job_id: str) -> str | None:
        return None

    # --- running ------------------------------------------------------------------------------------

    async def submit(self, job: Job, context: JobContext) -> str:
        if self.options.mode == "respond":
            self._spawn(job, self._respond(job, context))
            return job.id
        extra: dict[str, str] = {}
        endpoint: dict[str, Any] | None = None
        if self.options.mode == "callback":
            endpoint = await self._gateway_call(
                context,
                "POST",
                f"/api/jobs/{job.id}/callbacks",
                {"method": "POST", "timeout": self.options.callback_timeout},
            )
            extra["X-Hookgate-Callback-URL"] = endpoint["url"]
            extra["X-Hookgate-Steps-URL"] = f"{context.gateway_url}/api/jobs/{job.id}/steps"
        status, body = await self._send_submit(job, context, extra)
        if status >= 500:
            raise EngineUnavailable(f"the upstream answered {status}", attempts=self.options.submit_attempts)
        if status >= 400:
            self._spawn(job, self._report(Outcome(job.id, "failed", error=_http_error(status, body))))
            return job.id
        if self.options.mode == "callback":
            assert endpoint is not None
            self._spawn(job, self._await_callback(job, context, endpoint))
            return job.id
        ref = _pointer(body, self.options.job_id_pointer)
        if not isinstance(ref, str | int) or ref == "":
            error = {
                "name": "UpstreamError",
                "message": f"no job id at {self.options.job_id_pointer!r} in the answer",
            }
            self._spawn(job, self._report(Outcome(job.id, "failed", error=error)))
            return job.id
        self._refs[job.id] = str(ref)
        self._spawn(job, self._poll(job, context, str(ref)))
        return str(ref)

    async def cancel(self, job_id: str) -> None:
        task = self._tasks.pop(job_id, None)
        if task is not None:
            task.cancel()
        ref = self._refs.pop(job_id, None)
        if ref is not None and self.options.cancel_path and self._session is not None:
            url = self.options.base_url + self.options.cancel_path.format(ref=ref, job_id=job_id)
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._session.post(
                    url, json={"reason": "cancelled in hookgate"}, headers=dict(self.options.headers)
                ):
                    pass

    def _spawn(self, job: Job, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._forget(job.id, task))

    def _forget(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
        self._suspended.discard(job_id)

    async def _report(self, outcome: Outcome) -> None:
        self._tasks.pop(outcome.job_id, None)  # the slot frees before the report wakes the dispatcher
        self._refs.pop(outcome.job_id, None)
        if self._context is not None:
            await self._context.report(outcome)

    def _headers(
        self, job: Job, context: JobContext, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        headers = {**self.options.headers, "X-Hookgate-Job-Id": job.id, "Content-Type": "application/json"}
        token = context.token()
        if token:
            headers["X-Hookgate-Job-Token"] = token
        return {**headers, **(extra or {})}

    async def _send_submit(self, job: Job, context: JobContext, extra: Mapping[str, str]) -> tuple[int, Any]:
        assert self._session is not None
        url = self.options.base_url + self.options.submit_path.format(script=job.script, job_id=job.id)
        try:
            async with self._session.post(
                url, data=orjson.dumps(job.args or {}), headers=self._headers(job, context, extra)
            ) as resp:
                return resp.status, _decode(await resp.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise EngineUnavailable(
                f"the upstream is unreachable: {exc}", attempts=self.options.submit_attempts
            ) from None

    async def _respond(self, job: Job, context: JobContext) -> None:
        """The answer is the result; an unreachable upstream is tried again with backoff first."""
        for attempt in range(1, self.options.submit_attempts + 1):
            try:
                status, body = await self._send_submit(job, context, {})
                break
            except EngineUnavailable as exc:
                if attempt == self.options.submit_attempts:
                    error = {"name": "UpstreamUnavailable", "message": f"{exc} (after {attempt} tries)"}
                    await self._report(Outcome(job.id, "failed", error=error))
                    return
                await asyncio.sleep(min(30.0, 0.5 * 2 ** (attempt - 1)))
        if 200 <= status < 300:
            await self._report(Outcome(job.id, "succeeded", result=body))
        else:
            await self._report(Outcome(job.id, "failed", error=_http_error(status, body)))

    async def _poll(self, job: Job, context: JobContext, ref: str) -> None:
        assert self._session is not None
        delay = self.options.poll_min
        url = self.options.base_url + self.options.status_path.format(ref=ref, job_id=job.id)
        while True:
            await asyncio.sleep(delay)  # polling is this mode's contract with the upstream
            delay = min(delay * 1.5, self.options.poll_max)
            try:
                async with self._session.get(url, headers=self._headers(job, context)) as resp:
                    if resp.status >= 500:
                        continue
                    body = _decode(await resp.read())
                    if resp.status >= 400:
                        await self._report(Outcome(job.id, "failed", error=_http_error(resp.status, body)))
                        return
            except (aiohttp.ClientError, TimeoutError, OSError):
                continue  # the job keeps running upstream; look again later
            outcome = await self._interpret(job, context, ref, body)
            if outcome is not None:
                await self._report(outcome)
                return

    async def _interpret(self, job: Job, context: JobContext, ref: str, body: Any) -> Outcome | None:
        if self.options.preset == "windmill":
            if not isinstance(body, dict) or not body.get("completed"):
                return None
            result = body.get("result")
            if body.get("success"):
                return Outcome(job.id, "succeeded", result=result)
            error = (
                result.get("error")
                if isinstance(result, dict) and isinstance(result.get("error"), dict)
                else result
            )
            return Outcome(
                job.id, "failed", error=error if isinstance(error, dict) else {"message": str(error)}
            )
        state = None
        for pointer, mapping in self.options.states.items():
            value = _pointer(body, pointer)
            if value is not None and str(value) in mapping:
                state = mapping[str(value)]
        if state not in ("succeeded", "failed", "cancelled"):
            return None
        if state != "succeeded":
            error = _pointer(body, self.options.error_pointer) if self.options.error_pointer else None
            error = (
                error
                if isinstance(error, dict)
                else {"name": "UpstreamFailed", "message": str(error or state)}
            )
            return Outcome(job.id, "failed", error=error)
        if self.options.result_path:
            assert self._session is not None
            result_url = self.options.base_url + self.options.result_path.format(ref=ref, job_id=job.id)
            async with self._session.get(result_url, headers=self._headers(job, context)) as resp:
                return Outcome(job.id, "succeeded", result=_decode(await resp.read()))
        result = _pointer(body, self.options.result_pointer) if self.options.result_pointer else body
        return Outcome(job.id, "succeeded", result=result)

    async def _await_callback(self, job: Job, context: JobContext, endpoint: dict[str, Any]) -> None:
        while True:
            try:
                call = await self._gateway_call(
                    context, "GET", f"/api/callbacks/{endpoint['id']}/await?timeout=50", None, timeout=80
                )
            except _GatewayAnswer as answer:
                if answer.status == 504:
                    continue
                await self._report(
                    Outcome(job.id, "failed", error={"name": "CallbackError", "message": str(answer)})
                )
                return
            body = call.get("body") if isinstance(call, dict) else None
            if not isinstance(body, dict) or body.get("state") not in ("succeeded", "failed"):
                error = {
                    "name": "UpstreamError",
                    "message": 'the callback body must be {"state": "succeeded"|"failed", ...}',
                }
                await self._report(Outcome(job.id, "failed", error=error))
            elif body["state"] == "succeeded":
                await self._report(Outcome(job.id, "succeeded", result=body.get("result")))
            else:
                reported = body.get("error")
                error = reported if isinstance(reported, dict) else {"message": str(reported)}
                await self._report(Outcome(job.id, "failed", error=error))
            return

    async def _gateway_call(
        self,
        context: JobContext,
        method: str,
        path: str,
        body: Any,
        *,
        timeout: float = 30,  # noqa: ASYNC109
    ) -> dict[str, Any]:
        """Use the gateway's own API with the job's token, as a script would."""
        assert self._session is not None
        headers = {"Authorization": f"Bearer {context.token()}"}
        async with self._session.request(
            method,
            context.gateway_url + path,
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            data = _decode(await resp.read())
            if resp.status >= 400:
                raise _GatewayAnswer(resp.status, data)
            return data if isinstance(data, dict) else {}


class _GatewayAnswer(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"the gateway answered {status}: {body}")
        self.status = status


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace").strip()


def _pointer(document: Any, pointer: str | None) -> Any:
    """RFC 6901: ``""`` is the whole document, ``/a/0/b`` walks objects and arrays."""
    if pointer is None or pointer == "":
        return document
    value = document
    for token in pointer.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            value = value.get(token)
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return None
    return value


def _http_error(status: int, body: Any) -> dict[str, Any]:
    return {
        "name": "UpstreamError",
        "message": f"the upstream answered {status}",
        "status": status,
        "body": body,
    }
