"""Training process entry point: ``python -m workers.finetune.train --config job.json``.

stdout carries only JSON-lines events (see events.py): the original stdout is kept for them and fd 1 is
pointed at stderr, so anything libraries print (DeepSpeed does) goes to the log instead. Exit status: 0 after
``done``, 1 after an ``error`` event, 2 for an unusable config, 3 when the launching process died.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import threading
import time
import traceback

from workers.finetune.config import ConfigError, TrainJobConfig
from workers.finetune.events import DONE, ERROR, EventWriter


def _claim_stdout() -> EventWriter:
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stream = os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)
    return EventWriter(stream, enabled=os.environ.get("RANK", "0") == "0")


def _exit_when_orphaned(events: EventWriter, interval_s: float = 2.0) -> None:
    """End this process when its parent (the launcher, or torchrun) dies: a restarted worker would otherwise
    leave a headless run holding the GPU and writing into the output directory its retry uses."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        # The pipe to a dead launcher is broken: the report is best effort, the exit is not.
        with contextlib.suppress(OSError):
            events.emit(ERROR, code="orphaned", message="the launching process died")
        os._exit(3)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _prepare_environment(config: TrainJobConfig) -> None:
    """DeepSpeed always initialises torch.distributed: give a lone process the rendezvous variables a
    launcher would have set, and pick the CPU accelerator (gloo) when there is no GPU. Must run before
    DeepSpeed is imported."""
    if config.method != "full":
        return
    if "RANK" not in os.environ:
        os.environ.update(
            RANK="0",
            LOCAL_RANK="0",
            WORLD_SIZE="1",
            LOCAL_WORLD_SIZE="1",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(_free_port()),
        )
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.finetune.train")
    parser.add_argument("--config", required=True, help="path of the TrainJobConfig JSON")
    args = parser.parse_args(argv)
    events = _claim_stdout()
    _exit_when_orphaned(events)
    try:
        config = TrainJobConfig.read(args.config)
        config.validate()
    except (ConfigError, OSError, ValueError, TypeError) as exc:
        events.emit(ERROR, code="invalid_config", message=str(exc))
        return 2
    _prepare_environment(config)
    # Imported only now: the environment above must be in place before torch/DeepSpeed initialise.
    import torch

    from workers.finetune.runner import TrainingError, run_training

    try:
        metrics = run_training(config=config, events=events, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    except TrainingError as exc:
        events.emit(ERROR, code=exc.code, message=exc.message)
        return 1
    except torch.OutOfMemoryError as exc:
        events.emit(ERROR, code="out_of_memory", message=str(exc).splitlines()[0])
        return 1
    except Exception as exc:
        # Whatever else went wrong must still reach the launcher as an event, with the traceback in the log.
        traceback.print_exc()
        events.emit(ERROR, code="training_failed", message=f"{type(exc).__name__}: {exc}")
        return 1
    events.emit(DONE, output_dir=config.output_dir, metrics=metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
