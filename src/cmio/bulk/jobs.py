"""Asynchronous Bulk Data export jobs (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html).

An :class:`ExportJobs` object (one per server process, owned by its ``Env``) runs
each ``$export`` request in a background thread that writes NDJSON files under
``root/<job id>/``, and keeps the job's state for status polling, download and
cancellation (``DELETE`` on the status URL). The state is also written to
``root/<job id>/job.json``, so another server process (``cmio serve --workers N``)
or a restarted server answers polls and downloads for the job too; a ``cancel``
marker file beside it stops a job running in another process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from cmio.bulk.exporter import (
    ExportCancelledError,
    ExportFile,
    ExportProgress,
    PatientScope,
    export_ndjson,
)
from cmio.model import Model
from cmio.store import format_instant
from cmio.store.base import Repository

__all__ = ["ExportJob", "ExportJobs", "ExportRequest", "ExportWork", "TooManyJobsError"]

ExportWork = Callable[
    [Path, Callable[[ExportProgress], None], Callable[[], bool]], list[ExportFile]
]
"""A job's work other than a Bulk export (e.g. ``$viewdefinition-export``):
``work(directory, progress, cancelled) -> files``; raises ExportCancelledError when cancelled."""


def _owner(pid: int) -> str:
    """``pid:start`` of a process (its start time tells a reused pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rpartition(")")[2].split()[19]  # field 22: starttime
    except (OSError, IndexError):
        start = ""
    return f"{pid}:{start}"


def _alive(owner: str) -> bool:
    """Whether the process that wrote ``owner`` (see :func:`_owner`) still runs."""
    pid_text, _, start = owner.partition(":")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return _owner(pid) == owner if start else True


class TooManyJobsError(Exception):
    """The server is already running as many export jobs as it allows."""


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """A validated kick-off request.

    Attributes:
        request_url: the full kick-off URL (echoed in the manifest).
        types: ``_type`` resource types, or None for all.
        since: ``_since`` as an instant, or None.
        patients: Patient-compartment restriction (Patient/Group level), or None.
    """

    request_url: str
    types: tuple[str, ...] | None = None
    since: str | None = None
    patients: PatientScope | None = None


@dataclass(slots=True)
class ExportJob:
    """The state of one export job (status: ``in-progress``, ``completed``, ``error``)."""

    id: str
    request: ExportRequest
    directory: Path
    transaction_time: str
    status: str = "in-progress"
    exported: int = 0
    current_type: str | None = None
    files: list[ExportFile] = field(default_factory=list)
    error: str | None = None
    finished: bool = False
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def progress_text(self) -> str:
        """Human-readable progress for the ``X-Progress`` header."""
        where = f" ({self.current_type})" if self.current_type else ""
        return f"{self.exported} resources exported{where}"

    def save(self) -> None:
        """Write the job's state to ``job.json`` (atomically) for other processes."""
        state = {
            "id": self.id,
            "request_url": self.request.request_url,
            "transaction_time": self.transaction_time,
            "status": self.status,
            "exported": self.exported,
            "current_type": self.current_type,
            "files": [[f.type, f.path.name, f.count] for f in self.files],
            "error": self.error,
            "owner": _owner(os.getpid()),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = self.directory / f".job.json.{os.getpid()}.{threading.get_ident()}"
        temp.write_bytes(orjson.dumps(state))
        os.replace(temp, self.directory / "job.json")

    @classmethod
    def load(cls, directory: Path) -> ExportJob | None:
        """A snapshot of a job from its ``job.json``, or None when there is none."""
        try:
            state = orjson.loads((directory / "job.json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        job = cls(
            state["id"],
            ExportRequest(state["request_url"]),
            directory,
            state["transaction_time"],
            status=state["status"],
            exported=state["exported"],
            current_type=state["current_type"],
            files=[ExportFile(t, directory / name, n) for t, name, n in state["files"]],
            error=state["error"],
            finished=state["status"] != "in-progress",
        )
        owner = state.get("owner")
        if not job.finished and isinstance(owner, str) and not _alive(owner):
            # Its server was killed mid-job: the files are partial and nobody finishes them.
            job.status, job.finished = "error", True
            job.error = "the server running this export stopped before it finished; restart it"
            job.files = []
        return job

    def file(self, name: str) -> ExportFile | None:
        """The output file called ``name``, if the job produced it."""
        return next((f for f in self.files if f.path.name == name), None)

    def manifest(self, file_base: str) -> dict[str, Any]:
        """The completion manifest; ``file_base`` + ``/<name>`` is each file's URL."""
        return {
            "transactionTime": self.transaction_time,
            "request": self.request.request_url,
            "requiresAccessToken": False,
            "output": [
                {"type": f.type, "url": f"{file_base}/{f.path.name}", "count": f.count}
                for f in self.files
            ],
            "error": [],
        }


class ExportJobs:
    """Runs and tracks export jobs; files go under ``root/<job id>/``.

    Args:
        root: folder for job outputs (``cmio-data/exports`` by default in the server).
        max_running: kick-offs beyond this many running jobs raise TooManyJobsError.
    """

    def __init__(self, root: str | Path, max_running: int = 4) -> None:
        self.root = Path(root)
        self.max_running = max_running
        self._jobs: dict[str, ExportJob] = {}
        self._lock = threading.Lock()
        self._closed = False

    def start(
        self,
        repository: Repository,
        model: Model,
        request: ExportRequest,
        work: ExportWork | None = None,
    ) -> ExportJob:
        """Start a job in a background thread and return it (status ``in-progress``).

        ``work`` replaces the Bulk NDJSON export by other work writing files in the
        job's folder (polling, download and cancellation stay the same).

        Raises:
            TooManyJobsError: ``max_running`` jobs are already running.
        """
        job_id = uuid.uuid4().hex
        now = format_instant(datetime.now(UTC))
        job = ExportJob(job_id, request, self.root / job_id, now)
        with self._lock:
            if self._closed:
                raise RuntimeError("export jobs are shut down")
            running = sum(1 for j in self._jobs.values() if j.status == "in-progress")
            if running >= self.max_running:
                raise TooManyJobsError(f"{running} export jobs are already running")
            self._jobs[job_id] = job
        job.save()
        job.thread = threading.Thread(
            target=self._run,
            args=(job, repository, model, work),
            name=f"cmio-export-{job_id[:8]}",
            daemon=True,
        )
        job.thread.start()
        return job

    def _run(
        self, job: ExportJob, repository: Repository, model: Model, work: ExportWork | None
    ) -> None:
        marker = job.directory / "cancel"
        saved = [0.0]

        def progress(p: ExportProgress) -> None:
            job.exported = p.resources
            job.current_type = p.current_type
            now = time.monotonic()
            if now - saved[0] > 1.0:  # other processes read progress from job.json
                saved[0] = now
                job.save()

        def cancelled() -> bool:
            if not job.cancel.is_set() and marker.exists():
                job.cancel.set()
            return job.cancel.is_set()

        files: list[ExportFile] = []
        error: str | None = None
        try:
            if work is not None:
                files = work(job.directory, progress, cancelled)
            else:
                files = export_ndjson(
                    repository,
                    model,
                    job.directory,
                    types=job.request.types,
                    since=job.request.since,
                    patients=job.request.patients,
                    progress=progress,
                    cancelled=cancelled,
                )
        except ExportCancelledError:
            pass
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            # delete() removes the files itself only once the job is finished
            job.finished = True
            if not cancelled():
                job.files = files
                job.error = error
                job.status = "error" if error is not None else "completed"
                job.save()
        if job.cancel.is_set():
            shutil.rmtree(job.directory, ignore_errors=True)

    def get(self, job_id: str) -> ExportJob | None:
        """The job with this id, or None (unknown or deleted).

        Jobs of other processes (or of an earlier run) are read from ``job.json``.
        """
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            return job
        directory = self.root / job_id
        if (directory / "cancel").exists():
            return None
        return ExportJob.load(directory)

    def delete(self, job_id: str) -> bool:
        """Cancel a job and remove its files; False when unknown.

        Does not wait: a running job stops at its next check and removes its own
        files (https://hl7.org/fhir/uv/bulkdata/STU1.0.1/export.html#bulk-data-delete-request).
        """
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is not None:
                job.cancel.set()
                finished = job.finished
        if job is None:
            job = self.get(job_id)
            if job is None:
                return False
            finished = job.finished
        if not finished:
            # Mark it cancelled on disk: the process running it stops at its next check,
            # and no process answers polls for it any more.
            with contextlib.suppress(OSError):
                (job.directory / "cancel").touch()
        if finished:
            shutil.rmtree(job.directory, ignore_errors=True)
        return True

    def close(self) -> None:
        """Cancel running jobs and wait for their threads (files of finished jobs stay)."""
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.status == "in-progress":
                job.cancel.set()
        for job in jobs:
            if job.thread is not None:
                job.thread.join(timeout=30)
