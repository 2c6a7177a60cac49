"""The run lock: one run per campaign at a time, held in the warehouse itself.

Two runs of the same campaign at once (the nightly schedule and an officer's ``khaosat rerun``,
or two machines of a work pool) would interleave loads and rebuild the marts over each other.
The lock is a row of ``run_lock`` keyed by campaign_id, so it works wherever the warehouse does
(SQLite file or PostgreSQL shared by many machines) with nothing else to run. ``RunLock``
acquires, keeps alive (heartbeat), takes over a stale lock and releases.

Hostnames must tell machines apart: two containers with the same hostname in different PID
namespaces would see each other's PIDs as dead. Times are naive, in the campaign's time zone,
like every other time in the warehouse; hosts sharing a warehouse need synchronised clocks (NTP)
for the heartbeat timeout, which is generous for that reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from warehouse import tables as t
from warehouse.db import has_table
from warehouse.ledger import finish_run

log = logging.getLogger(__name__)

DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
#: How often a holder proves it is alive.
HEARTBEAT_SECONDS = 30.0
#: A lock silent this long is taken over even if its holder's host cannot be checked. Ten
#: heartbeats: long enough for a busy database or a small clock skew between machines.
STALE_AFTER_SECONDS = 300.0
#: How often a waiting run looks at the lock again.
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class LockInfo:
    """A run_lock row: who holds a campaign's lock and since when."""

    campaign_id: str
    run_id: str
    holder: str
    acquired_at: dt.datetime
    heartbeat_at: dt.datetime

    @property
    def host(self) -> str:
        """The holder's host name."""
        return self.holder.rpartition(":")[0]

    @property
    def pid(self) -> int | None:
        """The holder's process id on its host, if the holder names one."""
        pid = self.holder.rpartition(":")[2]
        return int(pid) if pid.isdigit() else None


class LockHeld(RuntimeError):
    """Another run holds the campaign's lock and did not release it in time."""

    def __init__(self, info: LockInfo, waited: float, now: dt.datetime) -> None:
        self.info, self.waited, self.now = info, waited, now
        silent = max(0, round((now - info.heartbeat_at).total_seconds()))
        super().__init__(
            f"campaign {info.campaign_id} is being consolidated by run {info.run_id} on "
            f"{info.holder} since {info.acquired_at:%Y-%m-%d %H:%M:%S} (last heartbeat "
            f"{silent} s ago; waited {waited:.0f} s); try again when it has finished"
        )

    def __reduce__(self) -> tuple[type[LockHeld], tuple[LockInfo, float, dt.datetime]]:
        # Prefect and Dask may pickle a flow's exception; the default reduce would call
        # LockHeld(message) and fail.
        return (LockHeld, (self.info, self.waited, self.now))


def this_holder() -> str:
    """host:pid of this process, as written in run_lock.holder."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_of(engine: Engine, campaign_id: str) -> LockInfo | None:
    """Who holds the campaign's lock now, or None (for ``khaosat status``)."""
    with engine.connect() as conn:
        return _read(conn, campaign_id)


def has_lock_table(engine: Engine) -> bool:
    """Whether the warehouse has the run_lock table yet (one migrated before it had none)."""
    return has_table(engine, t.run_lock.name)


def process_gone(pid: int) -> bool:
    """True if no process ``pid`` runs on this host (a zombie counts as gone: it is dead, only
    not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            # the state letter follows the parenthesised command name, which may hold spaces
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except (OSError, IndexError):  # no /proc (not Linux), or it vanished meanwhile
        return False


class RunLock:
    """The run lock of one campaign for one run, as a context manager.

    >>> with RunLock(engine, "HN-2024", run_id, wait_seconds=600):  # doctest: +SKIP
    ...     consolidate()

    ``taken_over`` is the stale lock this run replaced, if any.

    - **acquire** inserts the row in its own committed transaction; a unique violation means
      another run holds it. The caller waits up to ``wait_seconds`` (``settings.run.
      lock_wait_seconds``), polling, then gets ``LockHeld`` naming the run, host:pid and time;
    - **heartbeat**: while held, a daemon thread refreshes ``heartbeat_at``;
    - **stale**: a row whose holder is a process on this host that no longer exists (SIGKILL,
      OOM, power cut), or whose heartbeat is older than ``stale_after`` seconds (a holder on
      another machine that died), is taken over with a compare-and-set UPDATE, so two waiting
      runs cannot both take it. The dead run's ``run`` row, if still 'running', is closed as
      'failed';
    - **release** deletes the row (only if it is still ours).
    """

    def __init__(
        self,
        engine: Engine,
        campaign_id: str,
        run_id: str,
        *,
        wait_seconds: float = 0,
        timezone: str = DEFAULT_TIMEZONE,
        stale_after: float = STALE_AFTER_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.engine = engine
        self.campaign_id = campaign_id
        self.run_id = run_id
        self.wait_seconds = wait_seconds
        self.zone = ZoneInfo(timezone)
        self.stale_after = stale_after
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        self.holder = this_holder()
        self.taken_over: LockInfo | None = None
        #: set if the heartbeat found the row gone or someone else's (taken over as stale).
        self.lost = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> RunLock:
        try:
            self.acquire()
        except BaseException:
            # Ctrl-C (or any error) after the row was committed, before the block began: the
            # block's __exit__ will not run, so the row goes now (a no-op if it is not ours).
            self._release_quietly()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.release()
            return
        self._release_quietly()

    def _release_quietly(self) -> None:
        """``release``, for a run that stops on an exception: a warehouse error is logged, not
        raised over the exception that stops the run."""
        try:
            self.release()
        except sa.exc.SQLAlchemyError as err:  # the warehouse is why the run stops, often
            # the command says why in one line; the next run takes the lock over
            log.info(
                "run lock of campaign %s not released: %s", self.campaign_id, type(err).__name__
            )

    def now(self) -> dt.datetime:
        """Now, naive, in the campaign's time zone (as stored in run_lock)."""
        return dt.datetime.now(self.zone).replace(tzinfo=None)

    def acquire(self) -> None:
        """Take the lock, waiting up to ``wait_seconds``; raise LockHeld if it stays held."""
        started = time.monotonic()
        while True:
            if self._insert():
                break
            with self.engine.connect() as conn:
                info = _read(conn, self.campaign_id)
            if info is None:  # released between our insert and our read: try again at once
                continue
            if self._stale(info):
                if self._take_over(info):
                    break
                continue  # someone else changed the row first: look again
            waited = time.monotonic() - started
            if waited >= self.wait_seconds:
                raise LockHeld(info, waited, self.now())
            time.sleep(min(self.poll_seconds, self.wait_seconds - waited))
        self._stop.clear()
        beat = threading.Thread(
            target=self._heartbeat, name=f"run-lock-{self.campaign_id}", daemon=True
        )
        beat.start()
        self._beat = beat  # once started: release joins it

    def release(self) -> None:
        """Stop the heartbeat and delete the row if it is still ours."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.run_lock).where(*self._ours()))

    # -- internals -----------------------------------------------------------------------------

    def _ours(self) -> tuple[sa.ColumnElement[bool], ...]:
        c = t.run_lock.c
        return (c.campaign_id == self.campaign_id, c.run_id == self.run_id, c.holder == self.holder)

    def _insert(self) -> bool:
        now = self.now()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    t.run_lock.insert().values(
                        campaign_id=self.campaign_id,
                        run_id=self.run_id,
                        holder=self.holder,
                        acquired_at=now,
                        heartbeat_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def _stale(self, info: LockInfo) -> bool:
        if info.run_id == self.run_id and info.holder != self.holder:
            return True  # this very run, retried in a new process: its old process is gone
        if info.host == socket.gethostname() and info.pid is not None:
            if process_gone(info.pid):
                return True
        silent = (self.now() - info.heartbeat_at).total_seconds()
        return silent > self.stale_after

    def _take_over(self, stale: LockInfo) -> bool:
        """Replace ``stale`` with our row, only if the row is still exactly ``stale``."""
        c = t.run_lock.c
        now = self.now()
        with self.engine.begin() as conn:
            taken = conn.execute(
                sa.update(t.run_lock)
                .where(
                    c.campaign_id == stale.campaign_id,
                    c.run_id == stale.run_id,
                    c.holder == stale.holder,
                    c.heartbeat_at == stale.heartbeat_at,
                )
                .values(run_id=self.run_id, holder=self.holder, acquired_at=now, heartbeat_at=now)
            ).rowcount
            if taken != 1:
                return False
        log.warning(
            "run lock of campaign %s taken over from run %s on %s (holder gone or silent since %s)",
            stale.campaign_id,
            stale.run_id,
            stale.holder,
            f"{stale.heartbeat_at:%Y-%m-%d %H:%M:%S}",
        )
        self.taken_over = stale
        if stale.run_id != self.run_id:
            _close_dead_run(self.engine, stale.run_id)
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                with self.engine.begin() as conn:
                    alive = conn.execute(
                        sa.update(t.run_lock).where(*self._ours()).values(heartbeat_at=self.now())
                    ).rowcount
            except sa.exc.SQLAlchemyError as exc:  # a busy or restarting database: try later
                log.warning("run lock heartbeat of campaign %s failed: %s", self.campaign_id, exc)
                continue
            if alive != 1:
                self.lost = True
                log.error(
                    "run lock of campaign %s was taken over by another run while run %s held it",
                    self.campaign_id,
                    self.run_id,
                )
                return


def _read(conn: sa.Connection, campaign_id: str) -> LockInfo | None:
    row = conn.execute(sa.select(t.run_lock).where(t.run_lock.c.campaign_id == campaign_id)).first()
    if row is None:
        return None
    return LockInfo(
        campaign_id=row.campaign_id,
        run_id=row.run_id,
        holder=row.holder,
        acquired_at=row.acquired_at,
        heartbeat_at=row.heartbeat_at,
    )


def _close_dead_run(engine: Engine, run_id: str) -> None:
    """Close the run row of a run that died holding the lock, so it does not stay 'running'."""
    with engine.connect() as conn:
        status = conn.execute(sa.select(t.run.c.status).where(t.run.c.run_id == run_id)).scalar()
    if status == "running":
        finish_run(engine, run_id, status="failed")
