"""Every environment variable the app reads, read once, in one place."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "t", "true", "yes")


N = TypeVar("N", int, float)


def _number(env: dict[str, str], name: str, default: str, parse: Callable[[str], N],
            valid: Callable[[N], bool], wanted: str) -> N:
    """A number from the environment, or the server refuses to start with one sentence naming the variable."""
    value = env.get(name, default)
    try:
        number = parse(value)
    except ValueError:
        number = None
    if number is None or not valid(number):  # NaN fails every comparison, so `valid` refuses it too
        raise ValueError(f"{name} must be {wanted}, not {value!r}")
    return number


def _count(env: dict[str, str], name: str, default: int) -> int:
    return _number(env, name, str(default), int, lambda n: n >= 1, "a whole number of at least 1")


@dataclass(frozen=True)
class Settings:
    weights_dir: Path = ROOT / "weights"
    runs_dir: Path = ROOT / "runs"
    server_name: str = "127.0.0.1"
    server_port: int = 7860
    # Past this many waiting requests a caller is told at once ("Queue is full! Please try
    # again.") instead of waiting behind a queue it cannot see the end of.
    queue_size: int = 64
    # Browser sessions that trained whose own models are kept in memory, least recently used first out ...
    max_sessions: int = 32
    # ... and the memory all sessions' own models may hold together (an MLP at 28×28 is 1–10 MB).
    max_model_mb: int = 2000
    # Run folders (and their zips) kept on disk: each session's newest few, and a bound on all of them.
    runs_per_session: int = 5
    runs_kept: int = 30
    # A run stops itself after this long, keeping its last finished epoch (0: no limit). There is
    # one run at a time, and only the session that started it may stop it, so this is what
    # hands the trainer back to everyone else when a visitor walks away from a long run.
    max_run_minutes: float = 60.0
    # Uploaded files older than this are deleted by Gradio (checked as often).
    upload_lifetime_s: int = 6 * 3600
    # On a ZeroGPU Space the GPU exists only inside spaces.GPU calls, and CUDA elsewhere only
    # pretends to be there; the training thread outlives any call, so it trains on the CPU.
    zero_gpu: bool = False

    @property
    def train_device(self) -> str:
        return "cpu" if self.zero_gpu else "auto"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        return cls(
            runs_dir=Path(env.get("VAE_STUDIO_RUNS", ROOT / "runs")),
            server_name=env.get("GRADIO_SERVER_NAME", "127.0.0.1"),
            server_port=int(env.get("GRADIO_SERVER_PORT", "7860")),
            queue_size=_count(env, "VAE_STUDIO_QUEUE_SIZE", 64),
            max_sessions=_count(env, "VAE_STUDIO_MAX_SESSIONS", 32),
            max_model_mb=_count(env, "VAE_STUDIO_MAX_MODEL_MB", 2000),
            runs_per_session=_count(env, "VAE_STUDIO_RUNS_PER_SESSION", 5),
            runs_kept=_count(env, "VAE_STUDIO_RUNS_KEPT", 30),
            max_run_minutes=_number(env, "VAE_STUDIO_MAX_RUN_MINUTES", "60", float, lambda m: 0 <= m <= 60 * 24 * 365,
                                    "minutes from 0 (no limit) to a year"),
            zero_gpu=_flag(env.get("SPACES_ZERO_GPU", "")),
        )
