"""The flow runner: starts runs, advances them when steps end, and sweeps for what it missed.

A run is a job on the engine ``flow`` that no engine claims: this runner claims it, pins the
versions of the scripts its steps name, and starts the first steps as real jobs (claimed by the
dispatcher like any job). Every later change is one ``advance``: read the run's progress and its
step jobs, compute (progress.py), commit it all at once as a ``FlowAdvance`` — the step's end, the
new progress, the jobs it starts or cancels, the run's own end and every event — with a
compare-and-set on the progress's version. A stale computation writes nothing and is computed
again, so any replica may advance any run, one at a time, and a crash between two advances loses
nothing: the sweep finds runs whose step jobs ended without advancing them (a lease that expired,
a step cancelled on its own) and runs past their timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from gateway.errors import Conflict, GatewayError, JobNotFound
from gateway.flows.definition import Flow, Step
from gateway.flows.library import FlowLibrary
from gateway.flows.progress import (
    Outcome,
    Progress,
    StepStart,
    Wait,
    advance,
    initial_state,
    next_deadline,
    record_call,
    record_end,
    stop,
)
from gateway.jobs import lifecycle as jobs
from gateway.jobs.catalog import Catalog
from gateway.jobs.engine import Outcome as EngineOutcome
from gateway.models import (
    ACTIVE_STATES,
    FLOW_ENGINE,
    TERMINAL_STATES,
    CallbackEndpoint,
    Delivery,
    FlowAdvance,
    FlowRun,
    Job,
    JobEnd,
    JobOptions,
    JobState,
)
from gateway.outbound.notify import Subscriptions
from gateway.store import QUEUE_TOPIC, Store
from gateway.store.callback_tokens import hash_callback_token, new_callback_token
from gateway.store.signals import Signal

__all__ = ["EARLY_NONE", "FlowRunner", "wait_answer"]

log = logging.getLogger("hookgate.flows")
SAFETY_POLL = 1.0
SWEEP_INTERVAL = 1.0
IDLE_POLL = 10.0
FULL_SWEEP_EVERY = 60
"""Sweeps; every this many, every open run is looked at, not only the likely ones (a replica's
clock behind another's could hide a step's end from the likely ones' query)."""
MAX_ADVANCE_TRIES = 50
CLAIM_BATCH = 32
KNOWN_RUNS = 1000
"""Runs whose latest progress this process keeps in memory (each holds its steps' results)."""
OPEN_STATES = (JobState.QUEUED, JobState.RUNNING, JobState.SUSPENDED)
EARLY_NONE: Any = object()
"""``wait_answer``'s early result when there is none."""


@dataclass(frozen=True)
class _Ended:
    """A step job's end as its engine reported it, committed with the advance it causes."""

    end: JobEnd
    job: Job


class FlowRunner:
    def __init__(
        self,
        *,
        store: Store,
        library: Callable[[], FlowLibrary],
        catalog: Catalog,
        lease: float,
        subscriptions: Callable[[], Subscriptions] | None = None,
        abort: Callable[[str], Awaitable[None]] | None = None,
        seal: Callable[[dict[str, Any]], str] | None = None,
        public_base: Callable[[Job], str] = lambda job: job.origin or "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``seal`` hides a callback step's URL in its job (only the engine sees it);
        ``public_base`` is where handed-out URLs point for a run's job (its trigger's origin)."""
        self.store = store
        self.seal = seal
        self.public_base = public_base
        self.library = library
        self.catalog = catalog
        self.lease = lease
        self.subscriptions = subscriptions
        self.abort = abort
        self.clock = clock
        self.worker = f"{socket.gethostname()}:{os.getpid()}:flows:{uuid.uuid4().hex[:8]}"
        self._tasks: list[asyncio.Task[None]] = []
        self._advancing: dict[str, tuple[asyncio.Lock, int]] = {}  # run id -> its lock, its users
        self._known: dict[str, tuple[Job, FlowRun]] = {}  # run id -> as our last advance left it

    async def start(self) -> None:
        await self.sweep()
        self._tasks.append(asyncio.create_task(self._feed(), name="flows:feed"))
        self._tasks.append(asyncio.create_task(self._sweep_forever(), name="flows:sweep"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # --- news ---------------------------------------------------------------------------------------

    def _announce(self, job: Job) -> list[Delivery]:
        return self.subscriptions().for_job(job) if self.subscriptions else []

    def _announce_start(self, job: Job) -> list[Delivery]:
        return self.subscriptions().for_start(job) if self.subscriptions else []

    def _announce_steps(self, run: Job, progress: Progress) -> list[Delivery]:
        if self.subscriptions is None:
            return []
        subscriptions = self.subscriptions()
        deliveries = [
            d
            for step, why in progress.skipped
            for d in subscriptions.for_step_without_job(run, step, why=why)
        ]
        for step, error in progress.failed:
            deliveries += subscriptions.for_step_without_job(run, step, why=error["message"], failed=error)
        return deliveries

    # --- starting runs ------------------------------------------------------------------------------

    async def _feed(self) -> None:
        """Claim new runs whenever something is queued. A gateway serving no flows claims only
        every ``IDLE_POLL`` (runs queued before a reload removed every flow still start): a claim
        is a write, and every enqueue of every job would otherwise pay for one."""
        with self.store.listen(QUEUE_TOPIC) as wake:
            while True:
                wake.clear()
                try:
                    while len(claimed := await self._claim()) == CLAIM_BATCH:
                        await asyncio.gather(*(self.begin(run) for run in claimed))
                    await asyncio.gather(*(self.begin(run) for run in claimed))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("starting flow runs failed; retrying")
                if self.library().flows:
                    await wake.wait_for(SAFETY_POLL)
                else:
                    await asyncio.sleep(IDLE_POLL)  # a period: nothing tells us of a run but a claim

    async def _claim(self) -> list[Job]:
        return await self.store.claim_jobs(
            engine=FLOW_ENGINE,
            worker=self.worker,
            now=self.clock(),
            lease=self.lease,
            limit=CLAIM_BATCH,
            on_claim=self._announce_start,
        )

    async def begin(self, run: Job) -> None:
        """A claimed run: pin its scripts and start its first steps; its lease ends here, since a
        run is advanced by whoever sees a step end, not held by one process."""
        now = self.clock()
        flow = await self.library().flow_for(self.store, run.script_hash or "", run.script)
        if flow is None:
            await self._fail_unstarted(
                run, {"name": "FlowNotFound", "message": f"no flow version {run.script_hash}"}
            )
            return
        pinned: dict[str, dict[str, str]] = {}
        for step in flow.steps.values():
            if step.kind == "approval":
                continue
            try:
                kind = "flow" if step.kind == "flow" else "script"
                target = await self.catalog.resolve(step.script, engine=step.engine, kind=kind)
            except GatewayError as exc:
                await self._fail_unstarted(
                    run, {"name": "ScriptNotFound", "message": f'step "{step.id}": {exc}'}
                )
                return
            pinned[step.id] = {"engine": target.engine, "hash": target.version.hash}
        deadline = now + flow.timeout if flow.timeout is not None else None
        state = initial_state(flow, pinned=pinned, deadline=deadline)
        progress = advance(flow, state, run.args or {}, now=now, new_id=jobs.new_job_id)
        release = JobEnd(
            run.id, (JobState.RUNNING,), JobState.RUNNING, {"lease_owner": None, "lease_expires": None}
        )
        change = self._change(run, flow, 0, progress, ends=[release], now=now)
        if not await self.store.advance_flow(change):
            log.info("flow run %s was cancelled before it started", run.id)
            return
        started = FlowRun(run.id, run.script, flow.content_hash, change.state, 0, now)
        self._remember(run.evolve(lease_owner=None, lease_expires=None), started, change)

    async def _fail_unstarted(self, run: Job, error: dict[str, Any]) -> None:
        changes = {"error": error, "finished_at": self.clock()}
        await self.store.transition(
            run.id, from_states=ACTIVE_STATES, to=JobState.FAILED, changes=changes, deliveries=self._announce
        )

    # --- advancing ----------------------------------------------------------------------------------

    async def step_ended(self, outcome: EngineOutcome, job: Job) -> None:
        """An engine's outcome for a step job (the dispatcher calls this instead of completing it)."""
        now = self.clock()
        if job.parent_job is None or (outcome.state != "succeeded" and job.attempts <= job.options.retries):
            await jobs.complete(self.store, outcome, now=now, claimed=job)  # a retry: the run waits on
            return
        if outcome.state == "succeeded":
            to, changes = JobState.SUCCEEDED, {"result": outcome.result, "error": None, "logs": outcome.logs}
        else:
            to, changes = JobState.FAILED, {"error": outcome.error, "logs": outcome.logs}
        changes["finished_at"] = now
        ended = _Ended(JobEnd(job.id, tuple(ACTIVE_STATES), to, changes), job.evolve(state=to, **changes))
        if not await self._advance(job.parent_job, ended=ended):
            await jobs.complete(self.store, outcome, now=now, claimed=job)  # no progress row: a lone job

    async def called(self, endpoint: CallbackEndpoint) -> None:
        """A call reached an endpoint of a flow (a callback step's, an approval's): the run moves
        on now. Should this process die first, the sweep finds the call waiting (nothing is lost:
        the call was stored before its caller got an answer, and is taken with the advance)."""
        job = await self.store.get_job(endpoint.job_id)
        if job is None:
            return
        # An approval's endpoint belongs to its run (a sub-flow's run too); a callback step's to
        # the step's job, whose parent is the run.
        run_id = job.id if job.engine == FLOW_ENGINE else job.parent_job
        if run_id is not None:
            await self._advance(run_id)

    async def cancel(self, run_id: str, *, reason: str | None) -> Job:
        """Cancel a run: its running steps are cancelled and the rest skipped, in one commit."""
        error = {"name": "Cancelled", "message": reason or "cancelled by request"}
        done = await self._advance(
            run_id,
            halt=(Outcome(JobState.CANCELLED, error=error), "the run was cancelled"),
            must_be_open=True,
        )
        if not done:  # not begun yet: a plain job, and begin() will find it cancelled
            return await jobs.cancel(
                self.store, run_id, reason=reason, now=self.clock(), announce=self._announce
            )
        run = await self.store.get_job(run_id)
        assert run is not None
        return run

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, run_id: str) -> AsyncIterator[None]:
        """Steps of one run that end together in this process advance it in turn rather than race
        (each race lost is a computation thrown away); other processes are kept out by the store."""
        lock, users = self._advancing.get(run_id, (asyncio.Lock(), 0))
        self._advancing[run_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._advancing[run_id]
            if users <= 1:
                del self._advancing[run_id]
            else:
                self._advancing[run_id] = (lock, users - 1)

    async def _advance(
        self,
        run_id: str,
        *,
        ended: _Ended | None = None,
        halt: tuple[Outcome, str] | None = None,
        must_be_open: bool = False,
    ) -> bool:
        """Advance one run from what the store holds now; False when it has no progress row."""
        async with self._one_at_a_time(run_id):
            return await self._advance_now(run_id, ended=ended, halt=halt, must_be_open=must_be_open)

    async def _advance_now(
        self,
        run_id: str,
        *,
        ended: _Ended | None,
        halt: tuple[Outcome, str] | None,
        must_be_open: bool,
    ) -> bool:
        for attempt in range(MAX_ADVANCE_TRIES):
            known = self._known.pop(run_id, None) if attempt == 0 and ended is not None else None
            run: Job | None
            flow_run: FlowRun | None
            if known is not None:
                run, flow_run = known  # as our own last advance left it; if stale, the store says so
            else:
                run, flow_run = await self.store.get_job(run_id), await self.store.get_flow_run(run_id)
            if run is None or flow_run is None:
                if run is None and must_be_open:
                    raise JobNotFound(f"no job {run_id}")
                return False
            if must_be_open and run.finished:
                raise Conflict(f"job {run_id} already {run.state.value}", details={"state": run.state.value})
            flow = await self.library().flow_for(self.store, flow_run.flow_hash, flow_run.flow)
            if flow is None:  # its version is not in the store: its steps end as lone jobs
                log.error("flow run %s: its flow version %s is gone", run_id, flow_run.flow_hash)
                return False
            # A step's end, first time round, needs only its own job: the sweep finds the others.
            # Any other advance, or a retry after a lost race, reads every step job of the run.
            full = ended is None or attempt > 0
            change = await self._compute(run, flow_run, flow, ended=ended, halt=halt, full=full)
            if change is None:
                return True
            if await self.store.advance_flow(change):
                self._remember(run, flow_run, change)
                for end in change.ends:
                    if end.to is JobState.CANCELLED and end.job_id != run_id and self.abort is not None:
                        await self.abort(end.job_id)
                ended_run = any(end.job_id == run_id and end.to in TERMINAL_STATES for end in change.ends)
                if ended_run and run.parent_job is not None and run.flow_step is not None:
                    await self._advance(run.parent_job)  # a sub-flow ended: its step in the parent did
                return True
        log.warning("flow run %s: gave up advancing after %d conflicting tries", run_id, MAX_ADVANCE_TRIES)
        return True

    def _remember(self, run: Job, before: FlowRun, change: FlowAdvance) -> None:
        """Keep the run as this advance left it: the next step to end here starts from it without
        reading anything (another replica's advance in between makes the store refuse, and it reads)."""
        if change.settled:
            return
        if len(self._known) >= KNOWN_RUNS:
            self._known.pop(next(iter(self._known)))
        after = FlowRun(
            run.id,
            before.flow,
            before.flow_hash,
            change.state,
            before.version + 1,
            change.now,
            change.settled,
        )
        self._known[run.id] = (run, after)

    async def _compute(
        self,
        run: Job,
        flow_run: FlowRun,
        flow: Flow,
        *,
        ended: _Ended | None,
        halt: tuple[Outcome, str] | None,
        full: bool,
    ) -> FlowAdvance | None:
        now = self.clock()
        state: dict[str, Any] = flow_run.state
        children = {job.id: job for job in await self.store.child_jobs(run.id)} if full else {}
        ends: list[JobEnd] = []
        deliveries: list[Delivery] = []
        if ended is not None and (not full or not _gone_or_finished(children.get(ended.job.id))):
            # Its end commits with this advance or not at all (its state is compared and set).
            ends.append(ended.end)
            waits = ended.job.flow_step is not None and _waits_for_a_call(flow, ended.job)
            deliveries += [] if waits else self._announce(ended.job)  # the call ends that step
            children[ended.job.id] = ended.job
        state = _with_ended_children(flow, state, children)
        # Compared with the steps as the ends above left them, not as stored: a step whose job ends
        # and whose call arrives in one advance went from running to waiting to done in it.
        waiting = state
        state, consumes = await self._with_calls(flow, state, now)
        deliveries += self._announce_calls(run, waiting, state)
        if halt is not None and not run.finished:
            progress = stop(flow, state, outcome=halt[0], why=halt[1])
        elif run.finished or state.get("ended"):
            progress = stop(flow, state, outcome=Outcome(run.state), why="the run has ended")
            progress.outcome = None  # it has its end already
        else:
            deadline = state.get("deadline")
            if deadline is not None and now >= deadline:
                error = {"name": "Timeout", "message": f"the flow did not finish within {flow.timeout:g}s"}
                progress = stop(
                    flow, state, outcome=Outcome(JobState.FAILED, error=error), why="the flow timed out"
                )
            else:
                progress = advance(flow, state, run.args or {}, now=now, new_id=jobs.new_job_id)
        unchanged = progress.state == flow_run.state and flow_run.settled == progress.settled
        if unchanged and not (ends or progress.starts or progress.cancels or progress.outcome or consumes):
            return None  # nothing new: a sweep that found everything in order
        change = self._change(
            run, flow, flow_run.version, progress, ends=ends, deliveries=deliveries, now=now
        )
        return replace(change, consumes=tuple(consumes))

    async def _with_calls(
        self, flow: Flow, state: dict[str, Any], now: float
    ) -> tuple[dict[str, Any], list[int]]:
        """Waiting steps whose call has arrived, recorded; the calls are taken with the advance."""
        consumes: list[int] = []
        for step_id, entry in state["steps"].items():
            if entry["state"] != "waiting":
                continue
            call = await self.store.peek_callback_call(entry["callback"]["id"])
            if call is None or call.seq is None:
                continue
            received = {
                "method": call.method,
                "headers": call.headers,
                "query": call.query,
                "body": call.body,
                "received_at": call.received_at,
            }
            state = record_call(flow, state, step_id, call=received, now=now)
            consumes.append(call.seq)
        return state, consumes

    def _change(
        self,
        run: Job,
        flow: Flow,
        version: int,
        progress: Progress,
        *,
        ends: Sequence[JobEnd],
        now: float,
        deliveries: Sequence[Delivery] = (),
    ) -> FlowAdvance:
        all_ends = list(ends)
        news = [*deliveries, *self._announce_steps(run, progress)]
        cancelled = {"name": "Cancelled", "message": "the flow run ended before this step did"}
        for job_id in progress.cancels:
            all_ends.append(
                JobEnd(job_id, OPEN_STATES, JobState.CANCELLED, {"error": cancelled, "finished_at": now})
            )
        if progress.outcome is not None:
            outcome = progress.outcome
            changes = {"result": outcome.result, "error": outcome.error, "finished_at": now}
            all_ends.append(JobEnd(run.id, tuple(ACTIVE_STATES), outcome.state, changes))
            news += self._announce(run.evolve(state=outcome.state, **changes))
        creates, endpoints = [], []
        for start in progress.starts:
            step = flow.steps[start.step]
            job = self._step_job(run, step, progress.state["pinned"][start.step], start, now)
            if start.callback_id is not None and step.callback is not None:
                endpoint, url = self._endpoint(
                    run, start.callback_id, job.id, step.callback.method, now, start.expires_at or now
                )
                job = self._with_callback_url(job, url)
                endpoints.append(endpoint)
            creates.append(job)
        for wait in progress.waits:
            endpoint, url = self._endpoint(
                run, wait.callback_id, run.id, "POST", now, wait.expires_at, wait=wait
            )
            endpoints.append(endpoint)
            news += self._announce_approval(run, wait, url)
        return FlowAdvance(
            run_id=run.id,
            version=version,
            state=progress.state,
            flow=run.script,
            flow_hash=flow.content_hash,
            ends=tuple(all_ends),
            creates=tuple(creates),
            deliveries=tuple(news),
            settled=progress.settled,
            now=now,
            deadline=next_deadline(progress.state),
            callbacks=tuple(endpoints),
        )

    def _endpoint(
        self,
        run: Job,
        callback_id: str,
        job_id: str,
        method: str,
        now: float,
        expires_at: float,
        *,
        wait: Wait | None = None,
    ) -> tuple[CallbackEndpoint, str]:
        """A one-shot endpoint and its URL; only the URL's hash is kept, the URL goes where it must."""
        token = new_callback_token()
        approval = None
        if wait is not None:
            approval = {"title": wait.title, "details": wait.details, "fields": list(wait.form)}
        endpoint = CallbackEndpoint(
            id=callback_id,
            job_id=job_id,
            token_hash=hash_callback_token(token),
            method=method,
            expires_at=expires_at,
            created_at=now,
            approval=approval,
        )
        return endpoint, f"{self.public_base(run)}/callbacks/{token}"

    def _with_callback_url(self, job: Job, url: str) -> Job:
        """``callback_url`` is a sealed argument: ``***`` wherever the job is shown, the real URL
        only for the engine that runs it."""
        if self.seal is None:
            raise RuntimeError("a callback step needs the gateway's sealing key")
        return job.evolve(
            args={**(job.args or {}), "callback_url": "***"}, sealed_args=self.seal({"callback_url": url})
        )

    def _announce_calls(self, run: Job, before: dict[str, Any], after: dict[str, Any]) -> list[Delivery]:
        """``RuleCompleted`` or ``RuleFailed`` for waiting steps that a call (or a decision) ended."""
        if self.subscriptions is None:
            return []
        subscriptions = self.subscriptions()
        news: list[Delivery] = []
        for step_id, entry in after["steps"].items():
            if before["steps"][step_id]["state"] != "waiting" or entry["state"] == "waiting":
                continue
            if entry["state"] == "succeeded":
                news += subscriptions.for_step_without_job(run, step_id, why="", outputs=entry.get("result"))
            else:
                error = entry.get("error") or {}
                news += subscriptions.for_step_without_job(
                    run, step_id, why=error.get("message", ""), failed=error
                )
        return news

    def _announce_approval(self, run: Job, wait: Wait, url: str) -> list[Delivery]:
        """``ApprovalRequested`` with the page's URL, to the step's ``notify`` subscriptions only."""
        if self.subscriptions is None or not wait.notify:
            return []
        return self.subscriptions().approval_requested(
            run,
            step=wait.step,
            title=wait.title,
            details=wait.details,
            url=url,
            expires_at=wait.expires_at,
            to=wait.notify,
        )

    def _step_job(self, run: Job, step: Step, pinned: dict[str, str], start: StepStart, now: float) -> Job:
        # A step cut off by a crash runs again once its lease expires (docs/flows.md): the run
        # would otherwise fail for a reason that is nobody's. Steps should therefore be idempotent.
        options = JobOptions(
            timeout=step.timeout,
            retries=step.retries,
            retry_backoff=step.retry_backoff,
            retry_on_restart=True,
            delete_after_use=run.options.delete_after_use,
        )
        if start.kind == "flow":  # a sub-flow: its run is claimed by a runner like any run
            options = JobOptions(retry_on_restart=True, delete_after_use=run.options.delete_after_use)
        return Job(
            id=start.job_id,
            engine=pinned["engine"],
            script=step.script,
            script_hash=pinned["hash"],
            route=run.route,
            args=start.input,
            created_at=now,
            run_after=now,
            options=options,
            origin=run.origin,
            principal=run.principal,
            principal_scopes=run.principal_scopes,
            request_id=run.request_id,
            parent_job=run.id,
            root_job=run.root,
            flow_step=step.id,
        )

    # --- sweeping -----------------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        for count in itertools.count(1):
            await asyncio.sleep(SWEEP_INTERVAL)  # a period: timeouts and expired leases are time-based
            try:
                await self.sweep(everything=count % FULL_SWEEP_EVERY == 0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweeping flow runs failed")

    async def sweep(self, *, everything: bool = True) -> None:
        """Advance the open runs that may have something to do (``everything``: every open run)."""
        if everything:
            runs = await self.store.open_flow_runs()
        else:
            runs = await self.store.flow_runs_to_sweep(now=self.clock())
        for flow_run in runs:
            await self._advance(flow_run.run_id)


def _waits_for_a_call(flow: Flow, job: Job) -> bool:
    step = flow.steps.get(job.flow_step or "")
    return step is not None and step.callback is not None and job.state is JobState.SUCCEEDED


def _gone_or_finished(job: Job | None) -> bool:
    return job is None or job.finished


def _with_ended_children(flow: Flow, state: dict[str, Any], children: dict[str, Job]) -> dict[str, Any]:
    """Steps (and items) recorded as running whose job has ended (by its engine, a lease that
    expired, a cancel of the step itself, a sub-flow's run ending): recorded as ended."""
    for step_id, entry in state["steps"].items():
        if entry["state"] != "running":
            continue
        jobs = (
            [i.get("job") for i in entry["items"] if i["state"] == "running"]
            if "items" in entry
            else [entry.get("job")]
        )
        for job_id in jobs:
            child = children.get(job_id or "")
            if child is None or not child.finished:
                continue
            state = record_end(
                flow,
                state,
                step_id,
                job_id=child.id,
                status="succeeded" if child.state is JobState.SUCCEEDED else "failed",
                result=child.result,
                error=child.error,
                attempts=child.attempts,
                now=child.finished_at or 0.0,
            )
    return state


async def wait_answer(
    store: Store,
    run_id: str,
    timeout: float,  # noqa: ASYNC109
    changed: Signal,
) -> tuple[Job | None, Any]:
    """For a sync caller of a flow with ``early_return``: the run once it ends, or with the early
    step's result as soon as that is known (else ``EARLY_NONE``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        changed.clear()
        job = await store.get_job(run_id)
        if job is None or job.finished:
            return job, EARLY_NONE
        flow_run = await store.get_flow_run(run_id)
        if flow_run is not None and "early" in flow_run.state:
            return job, flow_run.state["early"]["result"]
        remaining = deadline - loop.time()
        if remaining <= 0:
            return job, EARLY_NONE
        await changed.wait_for(min(remaining, store.recheck_interval or remaining))
