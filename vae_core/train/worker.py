"""The worker process of `ProcessTrainer`: `python -m vae_core.train.worker`, fed and read through pipes.

It imports PyTorch at once (while it is a spare), then waits on stdin for one job,
trains it in a `Trainer` thread and writes every event to stdout as a pickle frame. A
"stop" on stdin stops the run. Whatever else would print goes to stderr, so stdout
carries frames only.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading

import torch  # noqa: F401 - imported while the worker is spare, before any job arrives

from .events import is_final
from .loop import Trainer
from .process import STOP
from .threads import CoreShare


def main() -> None:
    os.nice(int(sys.argv[1]) if len(sys.argv) > 1 else 0)  # below the server's priority: see process.py
    # frames only on the real stdout: anything else written to fd 1, by Python or by native code
    # (compilers, CUDA), goes to stderr instead
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    commands = sys.stdin.buffer
    try:
        model_config, train_config, dataset, on_epoch = pickle.load(commands)
    except EOFError:
        return  # a spare never used: the server stopped
    # the server that started this worker answers people on the same cores: see CoreShare
    trainer = Trainer(model_config, train_config, dataset, on_epoch, on_window=CoreShare().adjust)
    events = trainer.subscribe()

    def obey() -> None:
        try:
            while pickle.load(commands) != STOP:
                pass
        except EOFError:
            pass  # the server is gone: stop too
        trainer.stop()

    threading.Thread(target=obey, daemon=True).start()
    trainer.start()
    while True:
        event = events.get()
        pickle.dump(event, channel)
        channel.flush()
        if is_final(event):
            break
    trainer.join()
    channel.close()
    # `obey` may still block reading stdin; an interpreter shutting down around that read aborts with
    # "could not acquire lock for <stdin>". Every event is written, the checkpoint saved: leave now.
    os._exit(0)


if __name__ == "__main__":
    main()
