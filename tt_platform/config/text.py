"""Reading a text file that a person wrote (a run config, a watchlist) with one-line errors.

``read_text`` returns the file's text or raises ``TextFileError`` with a message that names the
problem and where it is, never a decoding traceback:

- a directory: ``is a directory, not a file``
- bytes that are not UTF-8 (most binary files, Latin-1 or UTF-16 text):
  ``line 3: not UTF-8 text (byte 0xe9 at offset 27)``
- UTF-8 with a NUL byte (binary data, or UTF-16 text without a byte order mark):
  ``line 1: not a text file (NUL byte at offset 1; binary data or UTF-16/32 text)``

A UTF-8 byte order mark at the start is allowed and dropped. An empty file reads as ``""``; what
that means is up to the caller.
"""

from __future__ import annotations

from pathlib import Path


class TextFileError(ValueError):
    """A file that cannot be read as UTF-8 text; the message starts with the problem's line
    when it has one (the caller prefixes the file name)."""


def line_of_offset(raw: bytes | str, offset: int) -> int:
    """The 1-based line that ``offset`` (bytes or characters) falls on."""
    newline = b"\n" if isinstance(raw, bytes) else "\n"
    return raw[:offset].count(newline) + 1  # type: ignore[arg-type]


def read_text(path: Path) -> str:
    """The UTF-8 text of the file at ``path``."""
    if path.is_dir():
        raise TextFileError("is a directory, not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TextFileError(f"cannot be read ({exc.strerror or exc})") from None
    return decode_text(raw)


def decode_text(raw: bytes) -> str:
    """``raw`` as UTF-8 text (a leading byte order mark dropped)."""
    skip = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        start = skip + exc.start
        hint = "; it looks like UTF-16 text" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise TextFileError(f"line {line_of_offset(raw, start)}: not UTF-8 text (byte "
                            f"0x{raw[start]:02x} at offset {start}{hint})") from None
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise TextFileError(f"line {line_of_offset(raw, nul)}: not a text file (NUL byte at offset "
                            f"{nul}; binary data or UTF-16/32 text)")
    return text
