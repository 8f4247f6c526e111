"""Fuzzing the YAML configs: the run config (with its walk-forward, gate and tuning sections, as
the study config uses them) and the live session config (``paper.yaml``).

Each property starts from a real config (the defaults, the study, paper.yaml), changes a few of
its keys to values of any type (NaN, inf, huge numbers, nested mappings, unknown keys, removed
sections), then may damage the text (a repeated line, a stray tab, an unknown tag, deep nesting,
bytes that are not UTF-8) before loading it from a file.

Property: the file loads into a config that can be used (its hash, its round trip through a
mapping) or is refused with the loader's own error, every line of which starts with the file.
"""

from __future__ import annotations

import copy
import math
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from tt_platform.config.run_config import RunConfigError, load_run_config, parse_run_config
from tt_platform.config.walk_forward import WalkForwardConfig, parse_walk_forward_config
from tt_platform.live.config import LiveConfigError, LiveSessionConfig, load_live_config, parse_live_config
from tt_platform.runtime import REPO_ROOT
from tt_platform_tests.fuzz.properties import FUZZ, assert_names_problem

LAST_SESSION = date(2024, 6, 28)  # a pinned market clock: the outcome does not depend on today

RUN_BASES = [
    parse_run_config({}, last_session=LAST_SESSION).as_written(),
    yaml.safe_load((REPO_ROOT / "tt_platform" / "configs" / "study.yaml").read_text()),
]
LIVE_BASES = [
    yaml.safe_load((REPO_ROOT / "paper.yaml").read_text()),
    LiveSessionConfig().model_dump(mode="json"),
]

ODD_NUMBERS = st.sampled_from([math.nan, math.inf, -math.inf, 10**400, -(10**30), 1e308, -1e-320, 0, -1, 0.0, 1, 2**63])
WORDS = st.sampled_from(["2020-01-02", "2020-02-30", "20200102", "1d", "csv", "paper", "champion", "~x/y.csv",
                         "", " ", "ppo", "expanding", "single", "learning_rate", "SPY"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ODD_NUMBERS, st.text(max_size=12), WORDS)


def values(keys: st.SearchStrategy) -> st.SearchStrategy:
    """Scalars, lists and mappings (keyed by ``keys``) nested a few levels."""
    return st.recursive(
        SCALARS,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=3)),
        max_leaves=8,
    )


# YAML: dates, and keys that are not text
VALUES = st.one_of(values(st.one_of(st.text(max_size=8), st.integers(-2, 2))), st.dates())
TEXT_DAMAGE = st.sampled_from([
    "none", "none", "none", "none", "repeat line", "tab", "tag", "python tag", "deep", "bad escape", "latin-1",
    "utf-16", "nul", "cut", "alias", "document end",
])


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key or index path inside ``tree`` (not the root itself)."""
    out = []
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list):
        items = enumerate(tree)
    else:
        return out
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


def _parent(tree: Any, path: tuple) -> Any:
    for key in path[:-1]:
        tree = tree[key]
    return tree


def _similar(old: Any) -> st.SearchStrategy:
    """A value of the same type as ``old`` (out of range, NaN, empty), or null."""
    if isinstance(old, bool):
        kind = st.booleans()
    elif isinstance(old, int):
        kind = st.one_of(st.integers(), st.integers(-3, 3), st.sampled_from([10**400, -(10**30), 2**63, 0, -1]))
    elif isinstance(old, float):
        kind = st.one_of(st.floats(), st.floats(-2, 2), ODD_NUMBERS)
    elif isinstance(old, str):
        kind = st.one_of(st.text(max_size=12), WORDS)
    elif isinstance(old, list):
        kind = st.lists(st.one_of(st.integers(-5, 10**6), st.floats(), st.text(max_size=4)), max_size=5)
    else:
        kind = SCALARS
    return st.one_of(kind, kind, kind, st.none())


@st.composite
def mutated(draw, bases: list[dict], new_values: st.SearchStrategy = VALUES, *, any_root: bool = True) -> Any:
    """A copy of one of ``bases`` with up to four keys changed, removed, added or re-typed (and,
    with ``any_root``, now and then not a mapping at all)."""
    tree = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(0, 4))):
        paths = _paths(tree)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(tree, path)
        change = draw(st.sampled_from(["similar", "similar", "set", "set", "delete", "unknown key"]))
        if change == "similar":
            parent[path[-1]] = draw(_similar(parent[path[-1]]))
        elif change == "set":
            parent[path[-1]] = draw(new_values)
        elif change == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(new_values)
    if any_root and draw(st.integers(0, 19)) == 0:
        tree = draw(new_values)
    return tree


@st.composite
def yaml_files(draw, bases: list[dict]) -> bytes:
    """The YAML text of a mutated config, maybe damaged, as the bytes of a file."""
    text = yaml.safe_dump(draw(mutated(bases)), allow_unicode=True, sort_keys=False)
    lines = text.splitlines()
    damage = draw(TEXT_DAMAGE)
    at = draw(st.integers(0, max(0, len(lines) - 1)))
    if damage == "repeat line" and lines:
        lines.insert(at, lines[at])
    elif damage == "tab" and lines:
        lines[at] = "\t" + lines[at]
    elif damage == "tag":
        lines.insert(at, draw(st.sampled_from(["x: !!int abc", "x: !!float nope", "x: !!binary '@@@'", "x: !unknown 3",
                                               "x: !!timestamp 2020-13-45", "? [a, b]\n: c", "x: !!set {a, b}"])))
    elif damage == "python tag":
        lines.insert(at, "x: !!python/object/apply:os.system ['echo hacked']")
    elif damage == "deep":
        depth = draw(st.integers(100, 3_000))
        lines.insert(at, "x: " + "[" * depth + "]" * depth)
    elif damage == "bad escape":
        lines.insert(at, draw(st.sampled_from(['x: "\\ud800"', 'x: "\\x00"', 'x: "\\N"', 'x: "\\U0010FFFF"', "x: '\x85'"])))
    elif damage == "alias":
        lines.insert(at, "x: *nowhere")
    elif damage == "document end":
        lines.insert(at, "--- second document")
    text = "\n".join(lines) + "\n"
    if damage == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    raw = text.encode("utf-16" if damage == "utf-16" else "utf-8")
    if damage == "latin-1":
        raw += "name: caf\xe9\n".encode("latin-1")
    elif damage == "nul":
        raw = raw[: len(raw) // 2] + b"\x00" + raw[len(raw) // 2 :]
    return raw


def assert_every_line_names(error: Exception, source: str) -> None:
    for line in str(error).splitlines():
        assert_names_problem(line, source)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="tt-fuzz-yaml-") as name:
        yield Path(name)


@FUZZ
@given(st.one_of(yaml_files(RUN_BASES), st.binary(max_size=100)))
def test_a_run_config_file_loads_into_a_usable_config_or_names_the_problem(folder, raw):
    path = folder / "run.yaml"
    path.write_bytes(raw)
    try:
        config = load_run_config(path, last_session=LAST_SESSION)
    except RunConfigError as error:
        event("refused")
        assert_every_line_names(error, str(path))
    else:
        event("loaded")
        again = parse_run_config(config.as_written(), source="round trip", last_session=LAST_SESSION)
        assert again.config_hash == config.config_hash
        assert config.data.start <= config.data.end <= LAST_SESSION


@FUZZ
@given(mutated([base["evaluation"]["walk_forward"] for base in RUN_BASES]))
def test_a_walk_forward_section_is_a_plan_or_names_the_key(section):
    try:
        walk = parse_walk_forward_config(section, source="study.yaml")
    except RunConfigError as error:
        event("refused")
        assert_every_line_names(error, "study.yaml")
    else:
        event("accepted")
        assert isinstance(walk, WalkForwardConfig) and len(walk.key()) == 16
        assert walk.train_bars >= walk.min_train_bars and walk.step >= walk.test_bars


@FUZZ
@given(st.one_of(yaml_files(LIVE_BASES), st.binary(max_size=100)))
def test_a_live_session_file_loads_or_names_the_problem(folder, raw):
    path = folder / "paper.yaml"
    path.write_bytes(raw)
    try:
        config = load_live_config(path)
    except LiveConfigError as error:
        event("refused")
        assert_every_line_names(error, str(path))
    else:
        event("loaded")
        assert parse_live_config(config.safe_dict()) == config
        assert config.capital > 0 and all(math.isfinite(v) for v in (config.capital, config.heartbeat_seconds))


@pytest.mark.parametrize("text, expected", [
    ('universe: {watchlist: "~nosuchuser/universe.csv"}\n',
     "universe.watchlist: not a usable path '~nosuchuser/universe.csv' (Could not determine home directory.)"),
    ('data: {source: csv, csv_dir: "bars\\0"}\n', "data.csv_dir: not a usable path 'bars\\x00' (embedded null byte)"),
    ('env: {"window\\r": 3}\n', "env.window\\r: unknown key"),
    ('universe: {watchlist: ""}\n', "universe.watchlist: an empty path; leave the key out (or null) for none"),
    ("data: {start: !!timestamp soon}\n", "data.start: expected a date YYYY-MM-DD, got soon"),
])
def test_run_config_refusals_found_by_fuzzing_name_file_and_key_on_one_line(folder, text, expected):
    path = folder / "run.yaml"
    path.write_text(text)
    with pytest.raises(RunConfigError) as error:
        load_run_config(path, last_session=LAST_SESSION)
    assert str(error.value) == f"{path}: {expected}"


@pytest.mark.parametrize("text, expected", [
    ("capital: !!int abc\n", ": not valid YAML (invalid literal for int() with base 10: 'abc')"),
    ("capital: " + "[" * 3000 + "]" * 3000 + "\n", ": not valid YAML (maximum recursion depth exceeded"),
    ("capital: !!timestamp soon\n", ": capital: Input should be a valid number, unable to parse string as a number"),
    ("ops: {trading_session: {config: {}}}\n1: 2\nfoo: 3\n", ": unknown top-level key(s) [1, 'foo'] beside ops"),
    ("name: ok\nmode: \x07\n", ", line 2: not valid YAML (character U+0007 is not allowed)"),
])
def test_live_config_refusals_found_by_fuzzing_name_the_file(folder, text, expected):
    path = folder / "paper.yaml"
    path.write_text(text)
    with pytest.raises(LiveConfigError) as error:
        load_live_config(path)
    assert str(error.value).startswith(f"{path}{expected}"), str(error.value)
