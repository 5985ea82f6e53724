"""Runs a training job in a child process group and turns its event stream into a TrainOutcome.

The child (``python -m workers.finetune.train``, or torchrun over it for several GPUs) starts in a new
session, so cancelling, timing out or cleaning up signals the whole group: DeepSpeed/torchrun workers and data
loader processes go with it. Its stdout carries JSON-lines events (forwarded to ``on_event``); its stderr
goes to ``<output_dir>/train.log``, never to a pipe, so a chatty child can never block. Nothing the child
does (OOM, crash, hang) raises here: every end is reported as an outcome.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from workers.finetune.checkpoints import list_checkpoints
from workers.finetune.config import ConfigError, TrainJobConfig
from workers.finetune.events import DONE, ERROR, parse_event
from workers.serialization import DictSerializable

logger = logging.getLogger(__name__)

CONFIG_FILE = "job.json"
LOG_FILE = "train.log"
_REPO_ROOT = Path(__file__).resolve().parents[2]
_LOG_TAIL_LINES = 20


@dataclass
class TrainOutcome(DictSerializable):
    status: Literal["succeeded", "failed", "cancelled"]
    output_dir: str
    error_code: str | None = None
    error_message: str | None = None
    checkpoints: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def _command(config: TrainJobConfig, config_path: Path, python: str) -> list[str]:
    entry = ["-m", "workers.finetune.train", "--config", str(config_path)]
    if config.nproc_per_node > 1:
        launcher = [
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={config.nproc_per_node}",
        ]
        return [python, *launcher, *entry]
    return [python, *entry]


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_group(process: subprocess.Popen[str], grace_s: float) -> None:
    """SIGTERM the group, SIGKILL whatever is left after ``grace_s``, and reap the leader."""
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(process.pid):
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
        if process.poll() is not None and not _group_alive(process.pid):
            break
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(line for line in lines[-_LOG_TAIL_LINES:] if line.strip())


def _exit_reason(returncode: int, log_path: Path) -> tuple[str, str]:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (often the kernel's out-of-memory killer)" if -returncode == signal.SIGKILL else ""
        return "killed", f"training process was killed by {name}{hint}"
    tail = _log_tail(log_path)
    last = tail.splitlines()[-1] if tail else "no output"
    return "crashed", f"training process exited with status {returncode}: {last}"


def _safe_call(callback: Callable[..., Any], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:
        # A failing progress hook (e.g. a database hiccup) must not abandon a running job.
        logger.exception("training callback %r failed", callback)


def launch_training(
    *,
    config: TrainJobConfig,
    on_event: Callable[[dict[str, Any]], None],
    cancel_check: Callable[[], bool],
    heartbeat: Callable[[], None] | None = None,
    timeout_s: float | None = None,
    poll_interval_s: float = 0.5,
    heartbeat_interval_s: float = 10.0,
    kill_grace_s: float = 15.0,
    python: str = sys.executable,
    extra_env: dict[str, str] | None = None,
) -> TrainOutcome:
    """Run ``config`` to completion, cancellation (``cancel_check()`` turned true) or ``timeout_s``.

    ``on_event`` receives every event dict as it arrives; ``heartbeat`` is called at least every
    ``heartbeat_interval_s`` while waiting. Writes ``<output_dir>/job.json`` and ``train.log``.
    """
    output_dir = Path(config.output_dir)
    try:
        config.validate()
    except ConfigError as exc:
        return TrainOutcome(
            status="failed", output_dir=str(output_dir), error_code="invalid_config", error_message=str(exc)
        )
    log_path = output_dir / LOG_FILE
    env = {**os.environ, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        config_path = config.write(output_dir / CONFIG_FILE)
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and training module
                _command(config, config_path, python),
                cwd=_REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                encoding="utf-8",
                errors="replace",
                start_new_session=True,
            )
    except OSError as exc:
        return TrainOutcome(
            status="failed", output_dir=str(output_dir), error_code="launch_failed", error_message=str(exc)
        )
    lines: queue.Queue[str | None] = queue.Queue()
    if process.stdout is None:
        raise RuntimeError("the training process was started without a stdout pipe")
    reader = threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True)
    reader.start()
    started = last_beat = last_check = time.monotonic()
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    stopped: tuple[Literal["failed", "cancelled"], str | None, str | None] | None = None
    stream_open = True
    while stream_open or process.poll() is None:
        try:
            line = lines.get(timeout=poll_interval_s)
        except queue.Empty:
            line = ""
        if line is None:
            stream_open = False
        elif line and (event := parse_event(line)) is not None:
            done = event if event["event"] == DONE else done
            error = event if event["event"] == ERROR else error
            _safe_call(on_event, event)
        if stream_open and process.poll() is not None:
            # The leader has exited but something it started still holds stdout open: end it.
            _signal_group(process.pid, signal.SIGKILL)
        now = time.monotonic()
        if heartbeat is not None and now - last_beat >= heartbeat_interval_s:
            _safe_call(heartbeat)
            last_beat = now
        if now - last_check < poll_interval_s:
            continue
        last_check = now
        if _cancel_requested(cancel_check):
            stopped = ("cancelled", None, None)
        elif timeout_s is not None and now - started > timeout_s:
            stopped = ("failed", "timeout", f"training did not finish within {timeout_s:g} s")
        else:
            continue
        _stop_group(process, kill_grace_s)
        break
    # The leader is gone; make sure no worker it left behind survives it.
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()
    reader.join(timeout=5)
    saved = str(output_dir)
    checkpoints = list_checkpoints(output_dir)
    if stopped is not None:
        status, code, message = stopped
        return TrainOutcome(
            status=status, error_code=code, error_message=message, output_dir=saved, checkpoints=checkpoints
        )
    if process.returncode == 0 and done is not None:
        return TrainOutcome(
            status="succeeded", metrics=dict(done.get("metrics") or {}), output_dir=saved, checkpoints=checkpoints
        )
    if error is not None and process.returncode >= 0:
        return TrainOutcome(
            status="failed",
            error_code=str(error.get("code")),
            error_message=str(error.get("message")),
            output_dir=saved,
            checkpoints=checkpoints,
        )
    code, message = _exit_reason(process.returncode, log_path)
    return TrainOutcome(
        status="failed", error_code=code, error_message=message, output_dir=saved, checkpoints=checkpoints
    )


def _cancel_requested(cancel_check: Callable[[], bool]) -> bool:
    try:
        return bool(cancel_check())
    except Exception:
        logger.exception("cancel_check failed; treating as not cancelled")
        return False


def local_gpu_count() -> int:
    """GPUs this worker can train on; more than one runs the job data-parallel through torchrun."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
