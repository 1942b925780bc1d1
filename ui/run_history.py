"""A session's runs as the Runs tab compares them, read back from their checkpoint folders.

Everything a comparison needs is already on disk: each folder's config.json holds the run's
model and training settings and its per-epoch history, and beside the folder lie its zip,
its training film and its last sample grid. So the server keeps no second copy in memory,
and the runs a session can compare are exactly those the disk bound keeps (`Studio._bound_disk`).
"""

from __future__ import annotations

import html
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vae_core.checkpoint import CONFIG
from vae_core.kinds import LOSS_TERMS

# beside each run folder: its film, its last sample grid, its download, and (brought back) the zip's name
FILM, GRID, ZIP, ORIGIN = ".gif", ".png", ".zip", ".origin"
TERM_LABELS = {"kl": "KL"}  # how a loss term (`KindSpec.loss_terms`) is written where people read it, if not as named


def term_label(term: str) -> str:
    return TERM_LABELS.get(term, term)


def part_name(term: str, where: str) -> str:
    """A loss term's curve, series or row, `where` it was measured: `recon (test)`, `KL (train)`."""
    return f"{term_label(term)} ({where})"


# the Runs tab's curve choices → the key of each history entry; the default terms, as the tab compares any kinds' runs
CURVES = {"test loss": "test_loss", **{part_name(term, "test"): term for term in LOSS_TERMS},
          "train loss (epoch mean)": "train_loss"}
# what the settings table compares: (row label, where in config.json); settings first, then results
SETTINGS = (
    ("model", ("model", "kind")), ("architecture", ("model", "arch")), ("hidden width", ("model", "hidden")),
    ("latent size", ("model", "latent")), ("likelihood", ("model", "likelihood")), ("β", ("model", "beta")),
    ("dataset", ("dataset",)), ("epochs trained", ("epochs_trained",)), ("batch size", ("train", "batch_size")),
    ("learning rate", ("train", "lr")), ("KL warm-up", ("train", "kl_warmup")),
    ("random shift (px)", ("train", "shift")), ("seed", ("train", "seed")),
)
RESULTS = (("test loss", ("metrics", "test_loss")),
           *((part_name(term, "test"), ("metrics", term)) for term in LOSS_TERMS))
LEGEND_SETTINGS = 2  # a run's legend names at most this many of the settings that set it apart
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
CHART_W, CHART_H = 900, 300  # the chart's drawing, before its legend rows
MAX_DOTS = 60  # points per run drawn as dots too (a one-epoch run is a single point)


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

    def caption(self, name: str) -> str:
        """For a list: its legend name, epochs and test loss, e.g. `β 4 · #9f3c · 10 epochs · …`;
        a brought-back run says the zip it came from."""
        loss = (self.info.get("metrics") or {}).get("test_loss")
        origin = self.beside(ORIGIN)
        came = f" · from {origin.read_text()[:60]}" if origin.is_file() else ""
        return f"{name} · {self.info.get('epochs_trained', '?')} epochs" + \
            (f" · test loss {loss:.2f}" if isinstance(loss, int | float) else "") + came

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


def run_choices(records: list[RunRecord]) -> list[tuple[str, str]]:
    """(caption, `runs/…` name) for a picker: named as the legends name them, by what sets each run apart."""
    return [(record.caption(name), record.name) for record, name in zip(records, legends(records), strict=True)]


def curves(records: list[RunRecord], curve: str) -> list[tuple[str, list[tuple[float, float]]]]:
    """Each run's legend name and its (epoch, value) points of the chosen curve."""
    key = CURVES[curve]
    return [(name, [(entry["epoch"], entry[key]) for entry in record.info.get("history", []) if key in entry])
            for record, name in zip(records, legends(records), strict=True)]


def curves_svg(series: list[tuple[str, list[tuple[float, float]]]], unit: str = "nats per image") -> str:
    """The curves as an SVG line chart, one colour per run, drawn whole on every call.

    Drawn here rather than by gr.LinePlot: that plot keeps the series names of its first data
    (Gradio 6.31), and a run's legend name changes as other runs arrive, so later lines were
    never drawn. A chart that is redrawn whole has no such memory, and a test can count its lines.
    """
    points = [p for _, pts in series for p in pts]
    if not points:
        return '<p class="runs-empty">No curves yet.</p>'
    (x0, x1), (y0, y1) = _span([p[0] for p in points]), _span([p[1] for p in points], pad=0.05)
    left, top, width, height = 60, 10, CHART_W - 70, CHART_H - 50

    def at(x: float, y: float) -> tuple[str, str]:
        """A point's place in the drawing, as the SVG's text."""
        return f"{left + (x - x0) / (x1 - x0) * width:.1f}", f"{top + (y1 - y) / (y1 - y0) * height:.1f}"

    parts = [f'<svg class="runs-chart" viewBox="0 0 {CHART_W} {CHART_H + 22 * len(series)}" '
             f'xmlns="http://www.w3.org/2000/svg" role="img">']
    for value in _ticks(y0, y1):
        y = at(x0, value)[1]
        parts.append(f'<line class="grid" x1="{left}" x2="{left + width}" y1="{y}" y2="{y}"/>'
                     f'<text class="tick" x="{left - 6}" y="{y}" text-anchor="end" dy="4">{value:g}</text>')
    for value in _ticks(x0, x1, whole=True):
        x = at(value, y0)[0]
        parts.append(f'<text class="tick" x="{x}" y="{top + height + 16}" text-anchor="middle">{value:g}</text>')
    parts.append(f'<text class="axis" x="{left + width / 2}" y="{top + height + 34}" text-anchor="middle">epoch</text>'
                 f'<text class="axis" transform="rotate(-90)" x="{-(top + height / 2)}" y="14" '
                 f'text-anchor="middle">{unit}</text>')
    for i, (name, pts) in enumerate(series):
        # coloured by age (the list is newest first), so a new run never recolours the others
        color, label = PALETTE[(len(series) - 1 - i) % len(PALETTE)], html.escape(name)
        drawn = [at(x, y) for x, y in pts]
        path = " ".join(f"{px},{py}" for px, py in drawn)
        dots = "".join(f'<circle cx="{px}" cy="{py}" r="3"/>' for px, py in drawn) if len(pts) <= MAX_DOTS else ""
        parts.append(f'<g class="run" fill="{color}" stroke="{color}"><title>{label}</title>'
                     f'<polyline fill="none" stroke-width="2" points="{path}"/>{dots}</g>')
        legend_y = CHART_H + 22 * i + 6
        parts.append(f'<line x1="{left}" x2="{left + 24}" y1="{legend_y}" y2="{legend_y}" stroke="{color}" '
                     f'stroke-width="3"/><text class="legend" x="{left + 32}" y="{legend_y + 4}">{label}</text>')
    return "".join(parts) + "</svg>"


def _span(values: list[float], pad: float = 0.0) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:  # one epoch, or a flat curve: a unit-wide axis around it
        return lo - 0.5, hi + 0.5
    return lo - pad * (hi - lo), hi + pad * (hi - lo)


def _ticks(lo: float, hi: float, whole: bool = False, count: int = 5) -> list[float]:
    """About `count` round values in [lo, hi] (1, 2 or 5 times a power of ten apart; whole ones for epochs)."""
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step = next(m * step for m in (1, 2, 5, 10) if m * step >= raw)
    if whole:
        step = max(1, round(step))
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


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
    return (f'<table class="runs-table"><caption>Highlighted: what differs. The test loss is recon + KL with the '
            'KL weighed 1, whatever β a run trained with (with bernoulli or gaussian, the negative ELBO), so '
            'runs compare fairly.'
            f'</caption><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')


def zipped(folder: Path) -> Path:
    """The run's checkpoint folder as a zip beside it, which /load_checkpoint takes back; made again if older."""
    target = folder.with_suffix(ZIP)
    if not target.is_file() or target.stat().st_mtime < (folder / CONFIG).stat().st_mtime:
        shutil.make_archive(str(folder), "zip", folder)
    return target


def _row(records: list[RunRecord], where: tuple[str, ...]) -> set[str]:
    return {_shown(_at(r.info, where)) for r in records}


def _at(info: Any, where: tuple[str, ...]) -> object:
    for key in where:
        info = info.get(key) if isinstance(info, dict) else None
    return info


def _shown(value: object) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
