"""The leadership workbooks written over the parse process pool.

The province's workbook is the largest: this thread writes it while the pool's processes write
the units', then takes back the units not yet given to a process, from the last, so that both
finish together. The campaign's data is pickled once and unpickled once per process. A unit
whose process died (the pool is then broken, and discarded) is written here. The files are the
same as :func:`flows.publish.workbooks.write_scopes` writes one after the other.
"""

from __future__ import annotations

import pickle
import uuid
from collections import deque
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import sqlalchemy as sa

from flows.alerts import Thresholds
from flows.pipeline.pools import discard_pool, submit
from flows.publish.workbooks import plan_workbooks, write_scope, write_scopes
from flows.publish.workbooks.data import CampaignData, Scope
from schemas.questionnaire import Questionnaire


def write_workbooks(
    engine: sa.Engine,
    campaign_id: str,
    output_dir: Path,
    questionnaires: Mapping[str, Questionnaire],
    *,
    run_id: str | None = None,
    thresholds: Mapping[str, float] | Thresholds | None = None,
    actions: Mapping[str, str] | None = None,
    pool: Executor | None = None,
    workers: int = 1,
) -> list[Path]:
    """Write the province's workbook and one per reporting unit; return their paths.

    The arguments before ``pool`` are :func:`flows.publish.workbooks.plan_workbooks`'. With a
    process ``pool`` of ``workers`` processes, the units' workbooks are written there (see the
    module's docstring); without one, all of them here.
    """
    data, jobs = plan_workbooks(
        engine,
        campaign_id,
        output_dir,
        questionnaires,
        run_id=run_id,
        thresholds=thresholds,
        actions=actions,
    )
    if pool is None or len(jobs) < 2:
        return write_scopes(data, jobs)
    return _write_pooled(data, jobs[0], jobs[1:], pool, workers)


def _write_pooled(
    data: CampaignData,
    province: tuple[Scope, Path],
    jobs: list[tuple[Scope, Path]],
    pool: Executor,
    workers: int,
) -> list[Path]:
    # The data is pickled here, once, before this thread writes the province's workbook: that
    # fills the data's lookup caches, and the pool pickles arguments in a thread of its own,
    # which would then see the data change under it. A process unpickles it once (the token).
    pickled = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    token = uuid.uuid4().hex
    waiting = deque(range(len(jobs)))  # the pool takes the first, this thread the last
    running: dict[Future[Path], int] = {}
    written: dict[int, Path] = {}
    broken = False

    def feed() -> None:
        # Two jobs a process, one running and one queued, so that no process waits for this
        # thread; never more, so that the rest stay here to take (a job given to a pool cannot
        # be taken back safely: cancelling races with a pool that breaks).
        while not broken and waiting and len(running) < 2 * workers:
            i = waiting.popleft()
            running[submit(pool, _write_pickled, token, pickled, jobs[i])] = i

    feed()
    paths = write_scopes(data, [province])
    while waiting or running:
        for future in [f for f in running if f.done()]:
            i = running.pop(future)
            try:
                written[i] = future.result()
            except BrokenProcessPool:  # its process died (killed, out of memory), or the pool
                # broke or was discarded before publishing: write it here
                broken = True
                waiting.append(i)
        feed()
        if waiting:
            i = waiting.pop()
            written[i] = write_scope(data, *jobs[i])
        elif running:
            wait(running, return_when=FIRST_COMPLETED)
    if broken:
        discard_pool(pool)
    return [*paths, *(written[i] for i in range(len(jobs)))]


#: In a worker process: the campaign's data of the latest token it was sent with.
_UNPICKLED: dict[str, CampaignData] = {}


def _write_pickled(token: str, pickled: bytes, job: tuple[Scope, Path]) -> Path:
    # A worker process's job: the campaign's data as write_workbooks pickled it, unpickled once
    # per process and publish (the token), not once per unit.
    data = _UNPICKLED.get(token)
    if data is None:
        _UNPICKLED.clear()
        data = _UNPICKLED[token] = pickle.loads(pickled)  # noqa: S301 - our own bytes
    return write_scope(data, *job)
