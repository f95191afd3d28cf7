"""Shared pieces of the SSABNet Streamlit pages: settings, path safety, cached loading, pickers.

Settings come from environment variables set by ``ssabnet app`` (:mod:`ssabnet.app_launcher`):
``SSABNET_APP_RUNS`` (runs folder, default ``runs``), ``SSABNET_APP_DATA`` (catalog name or
dataset folder, optional), ``SSABNET_APP_DATA_ROOTS`` (``os.pathsep``-separated folders datasets
may be read from; default ``${SSABNET_DATA:-data}``) and ``SSABNET_APP_COMPARE`` (comma-separated
run names preselected for comparison). All numbers and pictures come from the ``ssabnet`` API.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import ssabnet
from ssabnet.analysis import (
    Run,
    RunError,
    RunInfo,
    UnsafePathError,
    discover_runs,
    list_cards,
    load_dataset_confined,
    load_run,
    resolve_under,
    run_info,
)


@dataclass(frozen=True)
class AppSettings:
    runs_root: Path
    data_spec: str | None
    data_roots: tuple[Path, ...]
    compare: tuple[str, ...]


def settings() -> AppSettings:
    runs_root = Path(os.environ.get("SSABNET_APP_RUNS", "runs")).expanduser().resolve()
    roots_env = os.environ.get("SSABNET_APP_DATA_ROOTS") or os.environ.get("SSABNET_DATA", "data")
    data_roots = tuple(Path(p).expanduser().resolve() for p in roots_env.split(os.pathsep) if p)
    compare = tuple(
        name.strip() for name in os.environ.get("SSABNET_APP_COMPARE", "").split(",") if name
    )
    return AppSettings(runs_root, os.environ.get("SSABNET_APP_DATA") or None, data_roots, compare)


def page_header(title: str, caption: str) -> AppSettings:
    st.set_page_config(page_title=f"SSABNet · {title}", layout="wide")
    st.title(title)
    st.caption(caption)
    return settings()


@st.cache_data(ttl=30, show_spinner=False)
def _discover(root: str) -> list[RunInfo]:
    return discover_runs(root)


def run_infos(cfg: AppSettings) -> list[RunInfo]:
    """Runs under the runs root; stops the page with a clear message when there are none."""
    try:
        infos = _discover(str(cfg.runs_root))
    except FileNotFoundError as exc:
        st.error(f"{exc}. Start the app with `ssabnet app --runs DIR` (e.g. after `ssabnet demo`).")
        st.stop()
    if not infos:
        st.warning(
            f"No runs found under {cfg.runs_root}. Train one (`ssabnet train`) or run "
            "`ssabnet demo`."
        )
        st.stop()
    return infos


@st.cache_data(show_spinner=False, max_entries=32)
def _load(path: str, split: str, name: str, stamp: float) -> Run:
    del stamp  # part of the cache key only: a re-validated run is re-read
    return load_run(path, split, name=name)


def _stamp(path: Path, split: str) -> float:
    metrics = path / "val" / split / "metrics.json"
    return metrics.stat().st_mtime if metrics.exists() else 0.0


def typed_run_path(cfg: AppSettings, text: str) -> Path | None:
    """A run folder typed by the user, confined to the runs root (st.error on refusal)."""
    try:
        return resolve_under(text, [cfg.runs_root])
    except UnsafePathError as exc:
        st.error(f"Refused: {exc}")
        return None


def load_runs(infos: list[RunInfo], split: str) -> list[Run]:
    """Load runs (cached); a broken one gives an st.error and is left out."""
    runs = []
    for info in infos:
        try:
            runs.append(_load(str(info.path), split, info.name, _stamp(info.path, split)))
        except RunError as exc:
            st.error(f"Run **{info.name}** cannot be loaded: {exc}")
    return runs


def run_selector(
    infos: list[RunInfo], label: str, default: list[str] | None = None, key: str | None = None
) -> list[RunInfo]:
    names = [info.name for info in infos]
    chosen = st.multiselect(
        label, names, default=[n for n in (default or names) if n in names], key=key
    )
    return [info for info in infos if info.name in chosen]


def split_selector(key: str = "split") -> str:
    return st.radio("Validation result", ["best", "last"], horizontal=True, key=key)


def extra_run_box(cfg: AppSettings, infos: list[RunInfo], key: str) -> list[RunInfo]:
    """A text box for a run folder inside the runs root that discovery did not list."""
    text = st.text_input("Other run folder (relative to the runs folder)", key=key)
    if not text:
        return infos
    path = typed_run_path(cfg, text)
    if path is None:
        return infos
    if not path.is_dir():
        st.error(f"Run folder not found: {path}")
        return infos
    extra = run_info(path, name=path.relative_to(cfg.runs_root).as_posix() or path.name)
    return infos if any(i.path == extra.path for i in infos) else [*infos, extra]


def dataset_spec(cfg: AppSettings, run_config: dict | None) -> str | Path | None:
    """The dataset to show images from: ``--data`` or the run's validation data, made safe.

    Catalog names are accepted as they are; folders must lie under the data roots (or the
    runs root). Returns ``None`` after an st.warning when nothing usable is configured.
    """
    spec = cfg.data_spec or ((run_config or {}).get("data") or {}).get("val")
    if not spec:
        st.warning("No dataset configured: start the app with `--data NAME|PATH`.")
        return None
    if spec in list_cards():
        return spec
    try:
        return resolve_under(spec, [*cfg.data_roots, cfg.runs_root])
    except UnsafePathError as exc:
        st.warning(
            f"Dataset {spec!r} is not readable from the app: {exc}. Pass `--data` or "
            "`--data-root` to `ssabnet app`."
        )
        return None


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_dataset(spec: str):
    """The dataset, read only from inside the data roots and the runs root (a card, linked
    file or image outside them is refused before it is read)."""
    cfg = settings()
    return load_dataset_confined(spec, [*cfg.data_roots, cfg.runs_root])


@st.cache_resource(show_spinner=False, max_entries=4)
def cached_checkpoint(path: str, stamp: float):
    del stamp
    return ssabnet.load_checkpoint(path)


def fmt_pct(value, digits: int = 1) -> str:
    return "–" if value is None or value != value else f"{100 * float(value):.{digits}f}"
