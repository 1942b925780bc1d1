"""A session's runs as the Runs tab compares them, read back from their checkpoint folders.

Everything a comparison needs is already on disk: each folder's config.json holds the run's
model and training settings and its per-epoch history, and beside the folder lie its zip,
its training film and its last sample grid. So the server keeps no second copy in memory,
and the runs a session can compare are exactly those the disk bound keeps (`Studio._bound_disk`).
"""

from __future__ import annotations

import html
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vae_core.checkpoint import CONFIG

FILM, GRID, ZIP = ".gif", ".png", ".zip"  # beside each run folder: its film, its last sample grid, its download
# the Runs tab's curve choices → the key of each history entry
CURVES = {"test loss": "test_loss", "recon (test)": "recon", "KL (test)": "kl", "train loss": "train_loss"}
# what the settings table compares: (row label, where in config.json); settings first, then results
SETTINGS = (
    ("model", ("model", "kind")), ("architecture", ("model", "arch")), ("hidden width", ("model", "hidden")),
    ("latent size", ("model", "latent")), ("likelihood", ("model", "likelihood")), ("β", ("model", "beta")),
    ("dataset", ("dataset",)), ("epochs trained", ("epochs_trained",)), ("batch size", ("train", "batch_size")),
    ("learning rate", ("train", "lr")), ("KL warm-up", ("train", "kl_warmup")), ("shift", ("train", "shift")),
    ("seed", ("train", "seed")),
)
RESULTS = (("test loss", ("metrics", "test_loss")), ("recon (test)", ("metrics", "recon")),
           ("KL (test)", ("metrics", "kl")))
LEGEND_SETTINGS = 2  # a run's legend names at most this many of the settings that set it apart


@dataclass(frozen=True)
class RunRecord:
    folder: Path
    info: dict

    @property
    def name(self) -> str:
        """How pickers and the API name it: `runs/<folder>`."""
        return f"runs/{self.folder.name}"

    @property
    def label(self) -> str:
        """Short, for a legend, and unique: start time, model and the folder's id, e.g. `03:45:01 vae #9f3c`."""
        stamp = self.folder.name.split("-")
        if len(stamp) != 4:
            return self.folder.name
        clock = ":".join(stamp[1][i:i + 2] for i in (0, 2, 4))
        return f"{clock} {self.info.get('model', {}).get('kind', '?')} #{stamp[3][:4]}"

    def caption(self, name: str | None = None) -> str:
        """For a list: its name (`label` if none given), epochs and test loss, e.g. `β 4 · #9f3c · 10 epochs · …`."""
        loss = (self.info.get("metrics") or {}).get("test_loss")
        return f"{name or self.label} · {self.info.get('epochs_trained', '?')} epochs" + \
            (f" · test loss {loss:.2f}" if isinstance(loss, int | float) else "")

    def beside(self, suffix: str) -> Path:
        return self.folder.with_suffix(suffix)


def read_runs(folders: list[Path]) -> list[RunRecord]:
    """The runs whose checkpoint is complete, in the order given; a folder being rewritten is skipped."""
    records = []
    for folder in folders:
        try:
            records.append(RunRecord(folder, json.loads((folder / CONFIG).read_text())))
        except (OSError, ValueError):
            continue
    return records


def legends(records: list[RunRecord]) -> list[str]:
    """Each run's name in a legend: the settings that set it apart, e.g. `β 4 · #9f3c`, else its start time."""
    differing = [(label, where) for label, where in SETTINGS if len(_row(records, where)) > 1][:LEGEND_SETTINGS]
    if not differing:
        return [r.label for r in records]
    return [" · ".join([*(f"{label} {_shown(_at(r.info, where))}" for label, where in differing),
                        f"#{r.label.rsplit('#', 1)[-1]}"]) for r in records]


def curves(records: list[RunRecord], curve: str) -> pd.DataFrame:
    """One series per run of the chosen curve, per epoch, in the long format gr.LinePlot takes."""
    key = CURVES[curve]
    rows = [(entry["epoch"], entry[key], name) for record, name in zip(records, legends(records), strict=True)
            for entry in record.info.get("history", []) if entry.get(key) is not None]
    return pd.DataFrame(rows, columns=["epoch", "nats", "run"])


def settings_table(records: list[RunRecord]) -> str:
    """The runs side by side, one column each; a row whose values differ between runs is highlighted."""
    if not records:
        return "<p>No runs yet: train one (or bring a checkpoint back) in the Train tab.</p>"
    head = "".join(f"<th>{html.escape(name)}</th>" for name in legends(records))
    body = []
    for label, where in SETTINGS + RESULTS:
        values = [_shown(_at(r.info, where)) for r in records]
        differs = len(set(values)) > 1
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in values)
        body.append(f'<tr class="{"differs" if differs else ""}"><th>{html.escape(label)}</th>{cells}</tr>')
    return (f'<table class="runs-table"><thead><tr><th></th>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def zipped(folder: Path) -> Path:
    """The run's checkpoint folder as a zip beside it, which /load_checkpoint takes back; made again if older."""
    target = folder.with_suffix(ZIP)
    if not target.is_file() or target.stat().st_mtime < (folder / CONFIG).stat().st_mtime:
        shutil.make_archive(str(folder), "zip", folder)
    return target


def _row(records: list[RunRecord], where: tuple[str, ...]) -> set[str]:
    return {_shown(_at(r.info, where)) for r in records}


def _at(info: dict, where: tuple[str, ...]) -> object:
    for key in where:
        info = info.get(key) if isinstance(info, dict) else None
    return info


def _shown(value: object) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
