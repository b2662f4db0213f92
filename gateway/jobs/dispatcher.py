"""Pull queued jobs from the store and hand them to their engines, under a renewed lease.

Each engine gets a loop that claims no more jobs than the engine has free slots. A heartbeat renews
the leases of the jobs this process runs (and learns of jobs cancelled elsewhere); a recovery pass
gives back the jobs of processes whose leases expired. Nothing here sleeps to wait for work: the
loops wake on the store's queue notification, and time out only for retry back-offs and as a
safety net against a missed wake-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from gateway.jobs import lifecycle as jobs
from gateway.jobs.engine import (
    DEFAULT_LOG_LIMIT,
    Engine,
    EngineContext,
    EngineUnavailable,
    JobContext,
    LiveLogs,
    Outcome,
    Step,
)
from gateway.jobs.live_logs import LogCursor
from gateway.models import Delivery, Job, JobState, ScriptVersion
from gateway.outbound.events import EventType, step_event
from gateway.outbound.notify import Subscriptions
from gateway.store import QUEUE_TOPIC, InsertClaim, Store

__all__ = ["Dispatcher"]

log = logging.getLogger("hookgate.dispatcher")
SAFETY_POLL = 1.0
LOG_FLUSH = 0.5
"""How often the output of this process's running jobs is written to the store (when it grew)."""
STEP_KINDS = {
    "started": EventType.RULE_STARTED,
    "completed": EventType.RULE_COMPLETED,
    "failed": EventType.RULE_FAILED,
    "skipped": EventType.RULE_SKIPPED,
}


class Dispatcher:
    def __init__(
        self,
        *,
        store: Store,
        engines: Mapping[str, Engine],
        lease: float,
        gateway_url: Callable[[Job], str],
        unseal: Callable[[str], dict[str, Any]] | None = None,
        mint_token: Callable[[Job], str] | None = None,
        subscriptions: Callable[[], Subscriptions] | None = None,
        clock: Callable[[], float] = time.time,
        step_ended: Callable[[Outcome, Job], Awaitable[None]] | None = None,
    ) -> None:
        """``step_ended`` records the end of a flow step's job (the flow runner: the step's end
        and the run's next move commit together); without it a step job completes like any job."""
        self.store = store
        self.engines = engines
        self.lease = lease
        self.gateway_url = gateway_url
        self.unseal = unseal
        self.mint_token = mint_token
        self.subscriptions = subscriptions
        self.clock = clock
        self.step_ended = step_ended
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: dict[str, str] = {}  # job id -> engine name
        self._claimed: dict[str, Job] = {}  # job id -> the job as claimed (spares a read on completion)
        self._tasks: list[asyncio.Task[None]] = []
        self._log_cursors: dict[str, LogCursor] = {}  # job id -> how much of its output is written
        self._reserved: dict[str, int] = {}  # engine name -> slots promised to claims in flight

    def engine_context(self, data_dir: os.PathLike[str] | str) -> EngineContext:
        return EngineContext(
            report=self.report,
            load_version=self._load_version,
            data_dir=Path(data_dir),
            report_step=self.report_step,
        )

    async def _load_version(self, content_hash: str) -> ScriptVersion | None:
        return await self.store.get_script_version(content_hash)

    def _announce(self, job: Job) -> list[Delivery]:
        return self.subscriptions().for_job(job) if self.subscriptions else []

    def _announce_start(self, job: Job) -> list[Delivery]:
        return self.subscriptions().for_start(job) if self.subscriptions else []

    async def start(self) -> None:
        await self.store.recover_expired(now=self.clock(), on_fail=self._announce)
        for name, engine in self.engines.items():
            self._tasks.append(asyncio.create_task(self._feed(name, engine), name=f"dispatch:{name}"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="dispatch:heartbeat"))
        self._tasks.append(asyncio.create_task(self._flush_logs_forever(), name="dispatch:logs"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # --- claiming ---------------------------------------------------------------------------------

    async def _feed(self, name: str, engine: Engine) -> None:
        with self.store.listen(QUEUE_TOPIC) as wake:
            while True:
                wake.clear()
                try:
                    due = await self._claim_and_start(name, engine)
                    # With no free slot, the next wake-up is a job ending: nothing to wait for.
                    free = self._free_slots(name, engine) > 0
                    timeout = self._idle_timeout(due) if free else SAFETY_POLL
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dispatching to engine %s failed; retrying", name)
                    timeout = SAFETY_POLL
                # Not asyncio.wait_for: on Python 3.11 it can swallow the cancellation that stops
                # this loop when the wake-up lands at the same moment, and stop() then waits forever.
                await wake.wait_for(timeout)

    def _free_slots(self, name: str, engine: Engine) -> int:
        return engine.free_slots() - self._reserved.get(name, 0)

    @contextlib.contextmanager
    def claim_at_insert(self, engine: str) -> Iterator[InsertClaim | None]:
        """A claim for a sync job about to be inserted, when its engine has a free slot now (else
        None, also while the feed loop's own claim is in flight: the job is queued as usual). The
        slot stays promised, out of the feed loop's reach, until the block ends; the job is started
        inside it (``start_claimed``), so the engine counts it by then. A crash after the commit
        leaves a running job under a lease, recovered like any claimed job."""
        found = self.engines.get(engine)
        if found is None or self._free_slots(engine, found) <= 0:
            yield None
            return
        with self._promised(engine, 1):
            yield InsertClaim(worker=self.worker, lease=self.lease, on_claim=self._announce_start)

    async def start_claimed(self, job: Job) -> None:
        """Hand a job claimed at its insert to its engine, as if the feed loop had claimed it."""
        await self._start(job.engine, self.engines[job.engine], job)

    async def _claim_and_start(self, name: str, engine: Engine) -> float | None:
        """Claim and start what is due while slots are free; returns when the next queued job is
        due (None: none is queued, or no slot is free). Most wake-ups (a job ended) find nothing
        due, and are answered by a read before any slot is promised, so a sync request arriving
        meanwhile still finds its slot free (``claim_at_insert``)."""
        while self._free_slots(name, engine) > 0:
            due = await self.store.next_due(engine=name)
            if due is None or due > self.clock():
                return due
            # Counted again after the read: a sync request may have been promised a slot meanwhile.
            if (slots := self._free_slots(name, engine)) <= 0:
                return None
            # Promised until started: a sync request arriving meanwhile must not count them free.
            with self._promised(name, slots):
                claimed = await self.store.claim_jobs(
                    engine=name,
                    worker=self.worker,
                    now=self.clock(),
                    lease=self.lease,
                    limit=slots,
                    on_claim=self._announce_start,
                )
                for job in claimed:
                    await self._start(name, engine, job)
            if len(claimed) < slots:
                return await self.store.next_due(engine=name)  # SQLite knows it from the claim
        return None

    @contextlib.contextmanager
    def _promised(self, name: str, slots: int) -> Iterator[None]:
        """Slots out of everybody else's count while a claim is made and its jobs are handed to the
        engine, which only counts them once it has them."""
        self._reserved[name] = self._reserved.get(name, 0) + slots
        try:
            yield
        finally:
            self._reserved[name] -= slots

    def _idle_timeout(self, due: float | None) -> float:
        now = self.clock()
        if due is not None and due > now:
            return min(due - now, SAFETY_POLL)
        return SAFETY_POLL

    async def _start(self, name: str, engine: Engine, job: Job) -> None:
        self._held[job.id] = name
        self._claimed[job.id] = job
        try:
            mint = self.mint_token
            context = JobContext(
                job_id=job.id,
                gateway_url=self.gateway_url(job),
                mint_token=(lambda: mint(job)) if mint is not None else None,
                script=job.script,
                root_job=job.root,
            )
            await engine.submit(self._with_sealed_args(job), context)
        except EngineUnavailable as exc:
            await self._requeue_unavailable(name, job, exc)
        except Exception as exc:
            log.warning("engine %s could not start job %s: %s", name, job.id, exc)
            error = {"name": type(exc).__name__, "message": f"the engine could not start the job: {exc}"}
            await self.report(Outcome(job.id, "failed", error=error))
            await self._announce_submit_failed(name, job, error)

    async def _requeue_unavailable(self, name: str, job: Job, exc: EngineUnavailable) -> None:
        """Back to the queue with a backoff; the claim did not count as a run of the job."""
        self._held.pop(job.id, None)
        self._claimed.pop(job.id, None)
        tries = int((job.error or {}).get("submit_attempts", 0)) + 1
        if tries >= exc.attempts:
            final = {"name": "EngineUnavailable", "message": f"{exc} (gave up after {tries} tries)"}
            await self.report(Outcome(job.id, "failed", error=final))
            await self._announce_submit_failed(name, job, final)
            return
        delay = exc.retry_after if exc.retry_after is not None else min(60.0, 0.5 * 2 ** (tries - 1))
        log.warning("engine %s unavailable for job %s (%s); retrying in %.1fs", name, job.id, exc, delay)
        error: dict[str, object] = {
            "name": "EngineUnavailable",
            "message": str(exc),
            "submit_attempts": tries,
        }
        changes = {"error": error, "run_after": self.clock() + delay, "attempts": max(job.attempts - 1, 0)}
        await self.store.transition(
            job.id, from_states=(JobState.RUNNING,), to=JobState.QUEUED, changes=changes
        )

    async def _announce_submit_failed(self, engine: str, job: Job, error: Mapping[str, object]) -> None:
        """``JobSubmitFailed``, to the subscriptions that list it: an engine refused a job for good."""
        if self.subscriptions is None:
            return
        announce = self.subscriptions().operational(
            EventType.JOB_SUBMIT_FAILED,
            about=None,
            job_id=job.id,
            message=f"engine {engine} refused job {job.id}: {error['message']}",
            details={"job_id": job.id, "engine": engine, "script": job.script, "error": dict(error)},
        )
        try:
            await self.store.enqueue_deliveries(announce)
        except Exception:
            log.exception("queueing JobSubmitFailed for job %s failed", job.id)

    def _with_sealed_args(self, job: Job) -> Job:
        """The job as the engine must see it: redacted arguments with their real values."""
        if not job.sealed_args:
            return job
        if self.unseal is None:
            raise RuntimeError("the job has sealed arguments but no key to open them")
        return job.evolve(args={**(job.args or {}), **self.unseal(job.sealed_args)})

    # --- outcomes and cancellation ----------------------------------------------------------------

    async def report(self, outcome: Outcome) -> None:
        """Called by engines when a job ends. The job stays held (its lease renewed) until its end
        is recorded: recording may wait (a flow step's advance can lose a race and compute again),
        and a lease lapsing meanwhile would let another process run the job a second time."""
        claimed = self._claimed.pop(outcome.job_id, None)
        try:
            if self.step_ended is not None:
                job = claimed if claimed is not None else await self.store.get_job(outcome.job_id)
                if job is not None and job.flow_step is not None:
                    await self.step_ended(outcome, job)
                    return
            await jobs.complete(
                self.store, outcome, now=self.clock(), announce=self._announce, claimed=claimed
            )
        except Exception:
            log.exception("recording the outcome of job %s failed", outcome.job_id)
        finally:
            self._held.pop(outcome.job_id, None)

    async def report_step(self, job_id: str, step: Step) -> None:
        """An engine relays a step the job reported: it becomes a ``Rule*`` event."""
        if self.subscriptions is None:
            return
        job = await self.store.get_job(job_id)
        if job is None:
            return
        kind = STEP_KINDS.get(step.status)
        if kind is None:
            log.warning("job %s reported a step with unknown status %r", job_id, step.status)
            return
        event = step_event(
            job, kind=kind, rule=step.rule, message=step.message, outputs=step.outputs, now=self.clock()
        )
        try:
            await self.store.enqueue_deliveries(self.subscriptions().deliveries_for(event))
        except Exception:
            log.exception("recording step %s of job %s failed", step.rule, job_id)

    def live_logs(self, job_id: str) -> LiveLogs | str | None:
        """The output so far of a job that runs in this process."""
        name = self._held.get(job_id)
        return self.engines[name].live_logs(job_id) if name is not None else None

    def set_suspended(self, job_id: str, suspended: bool) -> None:
        """A job of ours awaits a callback (or stopped awaiting): its engine slot frees up meanwhile."""
        name = self._held.get(job_id)
        if name is not None:
            self.engines[name].set_suspended(job_id, suspended)

    async def abort(self, job_id: str) -> None:
        """Stop a job that was cancelled, if it runs in this process."""
        name = self._held.pop(job_id, None)
        self._claimed.pop(job_id, None)
        if name is not None:
            await self.engines[name].cancel(job_id)

    async def _flush_logs_forever(self) -> None:
        while True:
            await asyncio.sleep(LOG_FLUSH)  # a period: output grows without telling anyone
            try:
                await self.flush_logs()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("writing live logs failed")

    async def flush_logs(self) -> None:
        """What each running job of this process printed since the last time, to the store as one
        chunk: a browser following the job through another replica sees it too. The store keeps
        no more of it than the engine would (its ``max_log_bytes``)."""
        for job_id in [j for j in self._log_cursors if j not in self._held]:
            del self._log_cursors[job_id]
        for job_id in list(self._held):
            live = self.live_logs(job_id)
            if live is None:
                continue
            chunk = self._log_cursors.setdefault(job_id, LogCursor()).advance(live)
            if chunk:
                limit = live.limit if isinstance(live, LiveLogs) else DEFAULT_LOG_LIMIT
                await self.store.append_job_logs(job_id, chunk, limit=limit)

    async def _heartbeat(self) -> None:
        interval = self.lease / 3
        while True:
            await asyncio.sleep(interval)  # a period, not a wait for an event: leases are time-based
            try:
                await self.beat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat failed")

    async def beat(self) -> None:
        """Renew our leases, stop jobs we no longer hold, and recover expired ones of dead processes."""
        held = list(self._held)
        still_ours = await self.store.renew_leases(
            worker=self.worker, job_ids=held, until=self.clock() + self.lease
        )
        for job_id in held:
            if job_id not in still_ours and job_id in self._held:
                await self.abort(job_id)
        for job in await self.store.recover_expired(now=self.clock(), on_fail=self._announce):
            log.warning("recovered job %s after its lease expired: now %s", job.id, job.state.value)
