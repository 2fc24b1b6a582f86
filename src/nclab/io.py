"""Artifact I/O that never leaves a half-written file under its final name."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; rename it onto ``path`` (replacing it) only if the block
    succeeds, so that a folder output is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def epoch_file(folder: str | Path, epoch: int, suffix: str) -> Path:
    """The file of ``epoch`` in a run's checkpoint (``.pt``) or feature-dump (``.npz``) folder."""
    return Path(folder) / f"epoch{epoch}{suffix}"


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def load_npz(path: str | Path, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Load the arrays ``keys`` (default: every array) of an .npz; a missing or corrupt file, or a missing key,
    raises an error naming it."""
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in (f.files if keys is None else keys)}
    except (OSError, ValueError, EOFError, KeyError) as err:
        raise ValueError(f"cannot read {path}: {err}") from err


def load_dump(path: str | Path) -> dict[str, np.ndarray]:
    """A feature dump: ``{split}_features``, ``{split}_logits``, ``{split}_labels``, ``weight``, ``bias`` and
    ``head`` (the classifier head's name, :func:`nclab.models.head_kind`)."""
    dump = load_npz(path)
    for key in ("train_features", "train_logits", "train_labels", "weight", "bias", "head"):
        if key not in dump:
            raise ValueError(f"feature dump {path} has no array {key!r}")
    return dump


def read_tables(paths: list[str]) -> pd.DataFrame:
    """Stack CSV tables with the same columns (one per run) into one."""
    import pandas as pd

    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)


@contextmanager
def logged(log_path: str | Path) -> Iterator[None]:
    """Send a job's stdout and stderr (tracebacks included) to its log file, line-buffered for ``tail -f``."""
    import sys
    import traceback

    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log:
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        try:
            yield
        except BaseException:
            traceback.print_exc(file=log)
            raise
        finally:
            sys.stdout, sys.stderr = stdout, stderr
