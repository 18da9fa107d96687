"""Model-based test: random sequences of transitions against a real Redis, checked against a tiny
Python model of the job state machine (hypothesis stateful testing).

The model does not predict which of several ready jobs a reserve returns (Redis orders ties in a
sorted set by member), only that the broker returns eligible jobs, as many as it should, with the
next token; every return code and every job's state must then agree with the model exactly.
Stale holders (workers whose lease expired and whose job moved on) are kept and keep trying.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from runtime.broker.base import Code, Completion, JobState, NewJob
from runtime.broker.ops import BrokerOptions
from runtime.broker.redis import RedisBroker

MAX_DELIVERIES = 3
Q = "default"


@dataclass
class M:
    """The model's view of one job."""

    state: JobState = JobState.QUEUED
    token: int = 0
    dlv: int = 0
    expired: bool = False  # its current lease was granted already expired (lease 0)
    cancel_requested: bool = False


class BrokerMachine(RuleBasedStateMachine):
    url = ""

    def __init__(self) -> None:
        super().__init__()
        self.b = RedisBroker(
            redis.Redis.from_url(self.url), BrokerOptions(namespace=f"m{uuid.uuid4().hex[:10]}")
        )
        self.jobs: dict[str, M] = {}
        self.held: list[tuple[str, int]] = []  # every (id, token) ever handed out, stale ones included

    def teardown(self) -> None:
        self.b.close()

    @initialize()
    def start(self) -> None:
        self.enqueue(3)

    @rule(n=st.integers(1, 3))
    def enqueue(self, n: int) -> None:
        # deterministic ids: hypothesis replays draws, and sampled_from() must see the same lists
        ids = [f"j{len(self.jobs) + k:03d}" for k in range(n)]
        res = self.b.enqueue([NewJob(i, Q, b"e") for i in ids])
        assert all(r.created for r in res)
        for i in ids:
            self.jobs[i] = M()

    def _eligible(self) -> set[str]:
        return {i for i, m in self.jobs.items() if m.state in (JobState.QUEUED, JobState.FAILED)}

    @rule(n=st.integers(1, 4), expired=st.booleans())
    def reserve(self, n: int, expired: bool) -> None:
        eligible = self._eligible()
        got = self.b.reserve([Q], n, 0 if expired else 60_000).jobs
        for m in self.jobs.values():  # reserve first promotes every due retry (delay 0) to the queue
            if m.state is JobState.FAILED:
                m.state = JobState.QUEUED
        assert len(got) == min(n, len(eligible))
        for j in got:
            m = self.jobs[j.id]
            assert j.id in eligible and j.token == m.token + 1 and j.deliveries == m.dlv + 1
            m.state, m.token, m.dlv, m.expired, m.cancel_requested = (
                JobState.RUNNING,
                j.token,
                m.dlv + 1,
                expired,
                False,
            )
            self.held.append((j.id, j.token))

    def _owns(self, job_id: str, token: int) -> bool:
        m = self.jobs[job_id]
        return m.state is JobState.RUNNING and m.token == token

    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        if not self.held:
            return
        job_id, token = data.draw(st.sampled_from(self.held))
        m = self.jobs[job_id]
        repeat = m.state is JobState.SUCCEEDED and m.token == token
        expect = Code.OK if self._owns(job_id, token) or repeat else Code.STALE
        assert self.b.ack([Completion(job_id, Q, token, b"r")], 600_000) == [expect]
        if expect is Code.OK:
            m.state = JobState.SUCCEEDED

    @rule(data=st.data(), kind=st.sampled_from(["retry", "fail", "release"]))
    def finish_otherwise(self, data: st.DataObject, kind: str) -> None:
        if not self.held:
            return
        job_id, token = data.draw(st.sampled_from(self.held))
        m = self.jobs[job_id]
        owns = self._owns(job_id, token)
        if kind == "retry":
            code = self.b.retry(Q, job_id, token, 0, "e")
            nxt = JobState.CANCELLED if m.cancel_requested else JobState.FAILED
        elif kind == "fail":
            code = self.b.fail(Q, job_id, token, "r", 600_000, 1000)
            nxt = JobState.DEAD
        else:
            code = self.b.release(Q, [(job_id, token)])[0]
            nxt = JobState.CANCELLED if m.cancel_requested else JobState.QUEUED
            if owns and not m.cancel_requested:
                m.dlv -= 1  # a released delivery is given back
        assert code is (Code.OK if owns else Code.STALE)
        if owns:
            m.state = nxt

    @rule()
    def recover(self) -> None:
        want_rec = want_dead = 0
        for m in self.jobs.values():
            if m.state is JobState.RUNNING and m.expired:
                if m.cancel_requested:
                    m.state = JobState.CANCELLED
                elif m.dlv >= MAX_DELIVERIES:
                    m.state, want_dead = JobState.DEAD, want_dead + 1
                else:
                    m.state, want_rec = JobState.QUEUED, want_rec + 1
        assert self.b.recover_expired(Q, MAX_DELIVERIES) == (want_rec, want_dead)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        job_id = data.draw(st.sampled_from(sorted(self.jobs)))
        m = self.jobs[job_id]
        code = self.b.cancel(Q, job_id)
        if m.state in (JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED):
            assert code is Code.WRONG_STATE
            return
        assert code is Code.OK
        if m.state is JobState.RUNNING:
            m.cancel_requested = True
        else:
            m.state = JobState.CANCELLED

    @invariant()
    def states_agree(self) -> None:
        for job_id, m in self.jobs.items():
            info = self.b.job(job_id, [Q])
            assert info is not None and info.state is m.state, (job_id, info and info.state, m)
            assert info.deliveries == m.dlv


@pytest.mark.slow
def test_broker_matches_model(redis_url: str) -> None:
    BrokerMachine.url = redis_url
    run_state_machine_as_test(
        BrokerMachine,
        settings=settings(
            max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
