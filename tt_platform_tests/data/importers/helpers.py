"""Small helpers for importer tests: write a file and read the canonical first/last stamps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def utc(value: str) -> pd.Timestamp:
    return pd.Timestamp(value, tz="UTC")
