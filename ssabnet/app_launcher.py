"""Start the Streamlit analysis app (``ssabnet/app/ssabnet_app.py``) on 127.0.0.1.

Streamlit itself runs in a subprocess (``python -m streamlit run``), so ``import ssabnet`` never
imports it. The app reads its settings from environment variables (see ``ssabnet/app/common.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from ssabnet.data.catalog import list_cards
from ssabnet.errors import MissingInputError

#: The Streamlit entry page, shipped as part of the package (``ssabnet/app/``).
APP_FILE = Path(str(resources.files("ssabnet.app") / "ssabnet_app.py"))


def app_environment(
    runs: str | Path,
    data: str | None = None,
    data_roots: Sequence[str | Path] = (),
    compare: Sequence[str] = (),
) -> dict[str, str]:
    """The ``SSABNET_APP_*`` variables the app reads (merged into a copy of ``os.environ``).

    A dataset folder given as ``data`` is added to the allowed data roots, so the app may read
    it and nothing outside the roots.
    """
    roots = [Path(p).expanduser().resolve() for p in data_roots]
    if not roots:
        roots.append(Path(os.environ.get("SSABNET_DATA", "data")).expanduser().resolve())
    if data and data not in list_cards():
        folder = Path(data).expanduser().resolve()
        if not folder.exists():
            raise MissingInputError(f"--data: no catalog card and no folder named {data!r}")
        roots.append(folder if folder.is_dir() else folder.parent)
        data = str(folder)
    env = dict(os.environ)
    env["SSABNET_APP_RUNS"] = str(Path(runs).expanduser().resolve())
    env["SSABNET_APP_DATA"] = data or ""
    env["SSABNET_APP_DATA_ROOTS"] = os.pathsep.join(str(r) for r in roots)
    env["SSABNET_APP_COMPARE"] = ",".join(compare)
    return env


def app_command(port: int = 8501, headless: bool = True, address: str = "127.0.0.1") -> list[str]:
    """``python -m streamlit run app/ssabnet_app.py`` with the server flags we use."""
    if not APP_FILE.is_file():
        raise FileNotFoundError(f"app not found at {APP_FILE} (a broken ssabnet installation?)")
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_FILE),
        "--server.headless",
        "true" if headless else "false",
        "--server.address",
        address,
        "--server.port",
        str(int(port)),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.maxUploadSize",
        "50",
    ]


def start_app(
    runs: str | Path = "runs",
    data: str | None = None,
    *,
    port: int = 8501,
    compare: Sequence[str] = (),
    data_roots: Sequence[str | Path] = (),
    headless: bool = True,
    **popen_kwargs,
) -> subprocess.Popen:
    """Start the app server in the background; returns the process (caller terminates it)."""
    runs = Path(runs)
    if not runs.is_dir():
        raise MissingInputError(f"runs folder not found: {runs} (train a run or `ssabnet demo`)")
    env = app_environment(runs, data, data_roots, compare)
    return subprocess.Popen(app_command(port, headless), env=env, **popen_kwargs)


def launch_app(
    runs: str | Path = "runs",
    data: str | None = None,
    *,
    port: int = 8501,
    compare: Sequence[str] = (),
    data_roots: Sequence[str | Path] = (),
    headless: bool = False,
) -> int:
    """Run the app in the foreground until Ctrl-C, SIGTERM or SIGHUP; returns the exit code.

    The Streamlit server is a child process: a signal that stops this process stops it too
    (forwarded as SIGTERM, then SIGKILL after 10 s), so the port is never left served.
    Ctrl-C returns 0; SIGTERM/SIGHUP return ``128 + signal number`` like a shell.
    """
    process = start_app(
        runs, data, port=port, compare=compare, data_roots=data_roots, headless=headless
    )
    received: list[int] = []

    def forward(signum: int, _frame) -> None:
        received.append(signum)
        if process.poll() is None:
            process.terminate()

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    print(f"SSABNet app on http://127.0.0.1:{port}  (Ctrl-C to stop)", flush=True)
    code = 0
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
    finally:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 + received[0] if received else code


__all__ = ["APP_FILE", "app_command", "app_environment", "launch_app", "start_app"]
