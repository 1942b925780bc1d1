"""Helpers shared by tests/ and bench/: the real app server on a free port, the CLI as a subprocess,
fault injection. Nothing here replaces our own code: each helper runs it for real."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
