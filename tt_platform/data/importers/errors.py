"""The one exception every importer raises for a file that does not match its format."""

from __future__ import annotations

from pathlib import Path


class ImportFormatError(ValueError):
    """A file (or one of its rows) that cannot be read as the expected format.

    ``line`` is the 1-based physical line in the (decompressed) file, or ``None`` when the
    problem concerns the whole file (unknown format, empty file, missing member in a zip).
    """

    def __init__(self, path: str | Path, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):  # keep the three fields when pickled (multiprocessing, Dagster)
        return (type(self), (self.path, self.line, self.problem))
