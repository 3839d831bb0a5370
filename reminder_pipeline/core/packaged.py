"""Read the files the package ships (`reminder_pipeline/data`), through `importlib.resources` only:
never a path into a source checkout, so an installed wheel behaves like the checkout."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

DATA_PACKAGE = "reminder_pipeline.data"


def _data() -> Traversable:
    return files(DATA_PACKAGE)


def read_text(name: str) -> str:
    """A shipped text file (`dagster.yaml`, `workspace.yaml`)."""
    return _data().joinpath(name).read_text(encoding="utf-8")


@contextmanager
def migrations_directory() -> Iterator[Path]:
    """A real directory holding the shipped `*.sql` migrations (yoyo reads a directory). Installed
    normally, that is the package's own folder; from a zip, a temporary copy."""
    shipped = _data().joinpath("migrations")
    if isinstance(shipped, Path):
        yield shipped
        return
    with tempfile.TemporaryDirectory(prefix="reminder-pipeline-migrations-") as temporary:
        for entry in shipped.iterdir():
            if entry.name.endswith(".sql"):
                with entry.open("rb") as source, open(Path(temporary) / entry.name, "wb") as target:
                    shutil.copyfileobj(source, target)
        yield Path(temporary)
