"""Where a training run executes: this machine (the default) or a Ray cluster.

Both executors take a RunSpec and return the runner's RunOutcome, so the engine reads the log,
decides and records the same way whatever ran the command:

  LocalExecutor  runner.run_process: own process group, hard limit, kill event, capped log.
  RayExecutor    one Ray task per run (`num_gpus=1` on CUDA, else `num_cpus=1`) on an existing
                 cluster (`ray_address`) or a local instance; the candidate's tree travels as the
                 task's runtime_env working_dir (without .git and the links to local-only
                 folders); the output streams back chunk by chunk into the local run log; the
                 remote side enforces the limit and kills the process group; a kill request
                 cancels the task.

Ray is imported only when a RayExecutor starts, never at app start-up (`pip install
autoresearch-tui[ray]`).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from autoresearch_tui.core import processes
from autoresearch_tui.engine.runner import LogWriter, RunOutcome, run_process
from autoresearch_tui.errors import UserError

EXECUTORS = ("local", "ray")
CANCEL_WAIT_S = 10.0  # after the remote grace period: then the task is force-cancelled


@dataclass
class RunSpec:
    argv: list[str]
    cwd: Path  # the candidate's project folder (a worker's worktree)
    env: dict[str, str]  # the full environment of a local run
    env_updates: dict[str, str]  # what the app adds (AUTORESEARCH_*, CUDA_VISIBLE_DEVICES): sent to remote runs
    log_path: Path
    limit_s: float
    grace_s: float = 10.0
    kill_event: asyncio.Event | None = None
    pid_file: Path | None = None
    excludes: list[str] = field(default_factory=list)  # not shipped to a remote run (relative to cwd)
    worker: int = 0
    mark: str | None = None  # the process mark of the run (core/processes.py)


class Executor(Protocol):
    name: str

    def start(self) -> None: ...

    async def run(self, spec: RunSpec) -> RunOutcome: ...

    def close(self) -> None: ...


class LocalExecutor:
    name = "local"

    def start(self) -> None:
        pass

    async def run(self, spec: RunSpec) -> RunOutcome:
        return await run_process(spec.argv, cwd=spec.cwd, env=spec.env, log_path=spec.log_path, limit_s=spec.limit_s,
                                 grace_s=spec.grace_s, kill_event=spec.kill_event, pid_file=spec.pid_file,
                                 mark=spec.mark)

    def close(self) -> None:
        pass


def ray_available() -> str | None:
    """None when `import ray` works, else why not (for messages and test skips)."""
    try:
        importlib.import_module("ray")
    except Exception as exc:  # noqa: BLE001 - a broken install is as unusable as a missing one
        return f"ray is not importable ({type(exc).__name__}: {exc}); pip install 'autoresearch-tui[ray]'"
    return None


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, gpu: bool = False,
                 init_kwargs: dict[str, Any] | None = None, mark: str = "") -> None:
        self.address = address or None
        self.mark = mark  # carried by the Ray processes this session starts on this machine
        self.gpu = gpu
        self.init_kwargs = dict(init_kwargs or {})
        self._ray: Any = None
        self._task: Any = None
        self._owns = False  # we started (or connected) Ray: shut it down at the end
        self._scratch = tempfile.mkdtemp(prefix="autoresearch-ray-")

    # -- set-up ------------------------------------------------------------------------------
    def start(self) -> None:
        why = ray_available()
        if why:
            raise UserError(f"executor = \"ray\" needs Ray: {why}")
        import ray

        from autoresearch_tui.engine import ray_remote

        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                      **self.init_kwargs}
            try:
                with processes.marking(self.mark):  # a local instance's GCS, raylet and workers
                    ray.init(address=self.address, **kwargs)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = self.address or "a local instance"
                raise UserError(f"could not connect to the Ray cluster at {where}: {exc}; "
                                f"check ray_address (or run `ray start --head` there)") from None
            self._owns = True
        try:  # ship the remote function by value: the cluster needs no copy of this app
            ray.cloudpickle.register_pickle_by_value(ray_remote)
        except Exception:  # noqa: BLE001 - then it is pickled by reference (same install on every node)
            pass
        self._ray = ray
        self._task = ray.remote(ray_remote.stream_run)

    def resources(self) -> dict[str, float]:
        return dict(self._ray.cluster_resources()) if self._ray is not None else {}

    def _ship(self, folder: Path, excludes: list[str]) -> dict[str, Any]:
        """Upload the candidate's tree; the task's runtime_env points at the uploaded package."""
        from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

        env = {"working_dir": str(folder), "excludes": [".git", "__pycache__", *excludes]}
        log = logging.getLogger("autoresearch.ray")
        if not log.handlers:  # Ray's packaging notes must not reach the terminal under the live screen
            log.addHandler(logging.NullHandler())
            log.propagate = False
        try:
            env = upload_working_dir_if_needed(env, include_gitignore=False, scratch_dir=self._scratch, logger=log)
        except TypeError:  # Ray before the include_gitignore argument
            env = upload_working_dir_if_needed(env, scratch_dir=self._scratch, logger=log)
        env.pop("excludes", None)
        return env

    # -- one run -----------------------------------------------------------------------------
    async def run(self, spec: RunSpec) -> RunOutcome:
        if self._ray is None:
            self.start()
        ray = self._ray
        log = LogWriter(spec.log_path)
        try:
            runtime_env = self._ship(spec.cwd, spec.excludes)
        except Exception as exc:  # noqa: BLE001 - an upload failure is this run's crash, with the reason
            log.write(f"could not ship the candidate to the Ray cluster: {exc}\n".encode())
            log.close()
            return RunOutcome(None, 0.0, False, False, 0.0, spec.log_path, log.written, log.dropped)
        resources = {"num_gpus": 1} if self.gpu else {"num_cpus": 1}
        # The mark travels too: on this machine's instance the run is found and ended like a local one.
        env = {"PYTHONUNBUFFERED": "1", **spec.env_updates, **({processes.MARK: spec.mark} if spec.mark else {})}
        gen = self._task.options(runtime_env=runtime_env, max_retries=0, retry_exceptions=False,
                                 name=f"autoresearch-w{spec.worker}", **resources).remote(
            spec.argv, env, spec.limit_s, spec.grace_s)
        result: dict[str, Any] = {}
        error = ""

        async def consume() -> None:
            nonlocal error
            try:
                async for ref in gen:
                    item = await ref
                    if isinstance(item, (bytes, bytearray)):
                        log.write(bytes(item))
                    elif isinstance(item, dict):
                        result.update(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - cancelled task, dead node, broken worker
                error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"

        loop = asyncio.get_running_loop()
        started = loop.time()
        consumer = asyncio.ensure_future(consume())
        waiters = {consumer}
        kill_wait = asyncio.ensure_future(spec.kill_event.wait()) if spec.kill_event is not None else None
        if kill_wait is not None:
            waiters.add(kill_wait)
        killed = False
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if not consumer.done():
                killed = True
                ray.cancel(gen)  # KeyboardInterrupt on the remote side: it ends the process group
                done, _ = await asyncio.wait({consumer}, timeout=spec.grace_s + CANCEL_WAIT_S)
                if not done:
                    ray.cancel(gen, force=True)
                    await asyncio.wait({consumer}, timeout=CANCEL_WAIT_S)
        finally:
            for task in (kill_wait, consumer):
                if task is not None and not task.done():
                    task.cancel()
            if error and not killed:
                log.write(f"\n[autoresearch-tui: the Ray task failed: {error}]\n".encode())
            log.close()
        return RunOutcome(
            exit_code=result.get("exit_code"),
            duration_s=float(result.get("duration_s") or (loop.time() - started)),
            timed_out=bool(result.get("timed_out")) and not killed,
            killed=killed,
            peak_rss_mb=float(result.get("peak_rss_mb") or 0.0),
            log_path=spec.log_path,
            bytes_written=log.written,
            bytes_dropped=log.dropped,
        )

    def close(self) -> None:
        if self._owns and self._ray is not None:
            try:
                self._ray.shutdown()
            except Exception:  # noqa: BLE001
                pass
            processes.end_tree(None, self.mark)  # whatever of the local instance outlived shutdown
        self._owns = False


def check_executor(config: Any) -> None:
    """Refuse a bad executor before anything is created (a branch, a session)."""
    kind = config.executor
    if kind not in EXECUTORS:
        raise UserError(f"executor {kind!r} is not one of {', '.join(EXECUTORS)}")
    why = ray_available() if kind == "ray" else None
    if why:
        raise UserError(f'executor = "ray": {why}')


def make_executor(config: Any, device: str, mark: str = "") -> Executor:
    """The executor the config asks for (`executor`, `ray_address`); local by default. `mark`:
    what the processes it starts on this machine carry (core/processes.py)."""
    kind = config.executor
    if kind == "local":
        return LocalExecutor()
    if kind == "ray":
        return RayExecutor(config.ray_address, gpu=device == "cuda", mark=mark)
    raise UserError(f"executor {kind!r} is not one of {', '.join(EXECUTORS)}")
