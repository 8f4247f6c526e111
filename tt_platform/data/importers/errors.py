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


_SNIFF_BYTES = 8192
_SCAN_LIMIT_BYTES = 64 * 1024 * 1024


def _raw_stream(path: Path):
    import gzip
    import zipfile

    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".zip":
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if not m.endswith("/")]
        return archive.open(members[0]) if members else open(path, "rb")
    return open(path, "rb")


def check_text_file(path: str | Path, expected: str = "a text file") -> None:
    """Raise ``ImportFormatError`` naming ``path`` when it is binary (NUL bytes in its first
    8 KB) instead of ``expected``. Plain files only: archives are checked by their readers."""
    path = Path(path)
    if path.suffix.lower() in (".gz", ".zip") or not path.is_file():
        return
    with open(path, "rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    if b"\x00" in head:
        raise ImportFormatError(path, None, f"binary data, not {expected}")


def not_text_error(path: str | Path, expected: str = "a text file") -> ImportFormatError:
    """Why ``path`` could not be decoded as UTF-8: binary data, or the first line holding a
    byte sequence that is not UTF-8 (with the offending byte)."""
    path = Path(path)
    try:
        with _raw_stream(path) as stream:
            head = stream.read(_SNIFF_BYTES)
            if b"\x00" in head:
                return ImportFormatError(path, None, f"binary data, not {expected}")
            data = head + stream.read(_SCAN_LIMIT_BYTES)
    except Exception:  # noqa: BLE001 - an unreadable archive: say what is known
        return ImportFormatError(path, None, f"not UTF-8 text (expected {expected})")
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            byte = raw[err.start : err.start + 1].hex()
            return ImportFormatError(
                path, number, f"not UTF-8 text (byte 0x{byte} at column {err.start + 1}); save the file as UTF-8"
            )
    return ImportFormatError(path, None, f"not UTF-8 text (expected {expected})")
