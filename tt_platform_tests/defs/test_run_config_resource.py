"""The run config travels as Dagster config: the same keys as a YAML file, validated by load()."""

from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from dagster_shared.yaml_utils import load_run_config_yaml
from pydantic import BaseModel

from tt_platform.config import RunConfig, RunConfigError, load_run_config
from tt_platform.defs.platform.resources import (
    RunConfigResource,
    dagster_run_config,
    dagster_run_config_yaml,
)

NON_TRIVIAL = """
name: etf-rotation
mode: paper
universe:
  watchlist: lists/etfs.csv
data:
  source: csv
  csv_dir: bars
  interval: 1d
  start: 2018-01-02
  end: 2021-12-31
env:
  window_size: 30
  episode_length: null
  random_start: false
  initial_cash: 250000
  drawdown_penalty: 2.5
  max_drawdown: 0.2
  periods_per_year: 252
training:
  algo: a2c
  net_arch: [128, 64, 32]
  learning_rate: 0.0007
  n_steps: 16
  checkpoint_every: 2048
evaluation:
  test_fraction: 0.25
"""


@pytest.fixture
def non_trivial(tmp_path) -> RunConfig:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "etfs.csv").write_text("symbol\nSPY\nTLT\nGLD\n")
    (tmp_path / "bars").mkdir()
    path = tmp_path / "run.yaml"
    path.write_text(NON_TRIVIAL)
    return load_run_config(path)


def _resource_config(config: RunConfig, **execution) -> dict:
    return dagster_run_config(config, **execution)["resources"]["run_config"]["config"]


def test_round_trip_of_the_defaults():
    config = RunConfig()
    loaded = RunConfigResource(**_resource_config(config)).load()
    assert loaded.config_hash == config.config_hash
    assert loaded == config
    assert RunConfigResource().load().config_hash == config.config_hash


def test_round_trip_of_a_non_trivial_config_with_a_watchlist(non_trivial, tmp_path, monkeypatch):
    loaded = RunConfigResource(**_resource_config(non_trivial)).load()
    assert loaded.config_hash == non_trivial.config_hash
    assert loaded == non_trivial
    assert loaded.universe.watchlist == (tmp_path / "lists" / "etfs.csv").resolve()
    assert loaded.training.net_arch == [128, 64, 32] and loaded.env.drawdown_penalty == 2.5
    # the launch file holds absolute paths: it works from any directory
    monkeypatch.chdir("/")
    text = dagster_run_config_yaml(non_trivial)
    from_file = RunConfigResource(**load_run_config_yaml(text)["resources"]["run_config"]["config"]).load()
    assert from_file.config_hash == non_trivial.config_hash
    assert from_file.config_hash != RunConfig().config_hash


def test_execution_knobs_ride_along_but_stay_out_of_the_hash(non_trivial, tmp_path):
    values = _resource_config(non_trivial, resume_checkpoint=tmp_path / "ckpt", progress=True)
    assert values["resume_checkpoint"] == str((tmp_path / "ckpt").resolve()) and values["progress"] is True
    resource = RunConfigResource(**values)
    assert resource.load().config_hash == non_trivial.config_hash
    assert "resume_checkpoint" not in resource.load().model_dump()


def test_hash_is_unchanged_by_source_and_mode():
    moved = RunConfigResource(mode="live", data={"source": "ib"}).load()
    assert moved.mode.value == "live" and moved.data.source == "ib"
    assert moved.config_hash == RunConfig().config_hash
    assert RunConfigResource(env={"window_size": 21}).load().config_hash != RunConfig().config_hash


def test_a_bad_value_is_reported_with_its_key_path():
    with pytest.raises(RunConfigError) as error:
        RunConfigResource(env={"window_size": 0}, training={"net_arch": [64, -1]}).load()
    lines = str(error.value).splitlines()
    assert "resources.run_config.config: env.window_size: Input should be greater than or equal to 1" in lines
    assert "resources.run_config.config: training.net_arch.1: Input should be greater than 0" in lines


def _leaf_defaults(model: type[BaseModel], values: dict, prefix: str = "") -> dict:
    out = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out |= _leaf_defaults(annotation, values[name], f"{prefix}{name}.")
        else:
            out[f"{prefix}{name}"] = values[name]
    return out


def _schema_defaults(config_type, prefix: str = "") -> dict:
    out = {}
    for name, field in config_type.fields.items():
        if hasattr(field.config_type, "fields") and field.config_type.fields:
            out |= _schema_defaults(field.config_type, f"{prefix}{name}.")
        else:
            out[f"{prefix}{name}"] = field.default_value if field.default_provided else "<no default>"
    return out


def test_launchpad_schema_has_every_key_with_its_default():
    @dg.asset
    def probe(run_config: RunConfigResource) -> None:
        run_config.load()

    job = dg.Definitions(assets=[probe], resources={"run_config": RunConfigResource()}).resolve_implicit_global_asset_job_def()
    resources = job.run_config_schema.config_type.fields["resources"].config_type
    schema = resources.fields["run_config"].config_type.fields["config"].config_type
    defaults = _schema_defaults(schema)
    expected = _leaf_defaults(RunConfig, RunConfig().as_written())
    assert {k: v for k, v in defaults.items() if k not in ("resume_checkpoint", "progress")} == expected
    assert defaults["resume_checkpoint"] == "" and defaults["progress"] is False
    assert "(>= 1, <= 1024)" in schema.fields["env"].config_type.fields["window_size"].description


def test_a_launch_file_runs_the_same_config_in_dagster(non_trivial, tmp_path):
    seen = {}

    @dg.asset
    def probe(context: dg.AssetExecutionContext, run_config: RunConfigResource) -> None:
        seen["config"] = run_config.load()
        seen["created"] = context.instance.get_run_record_by_id(context.run_id).create_timestamp
        seen["as_of"] = run_config._as_of

    launch = tmp_path / "launch.yaml"
    launch.write_text(dagster_run_config_yaml(non_trivial))
    run_config = load_run_config_yaml(launch.read_text())
    with dg.instance_for_test() as instance:
        result = dg.materialize([probe], resources={"run_config": RunConfigResource()},
                                run_config=run_config, instance=instance)
    assert result.success
    assert seen["config"].config_hash == non_trivial.config_hash
    assert seen["config"].env.max_drawdown == 0.2 and seen["config"].training.learning_rate == 0.0007
    # an omitted data.end resolves against the run's creation, the same for every step
    assert seen["as_of"] == seen["created"]


def test_the_resource_reads_no_environment(monkeypatch, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text("name: from-env\n")
    monkeypatch.setenv("TT_RUN_CONFIG", str(other))
    assert RunConfigResource().load().name == "demo"


def test_from_run_config_carries_the_config(non_trivial, tmp_path):
    resource = RunConfigResource.from_run_config(non_trivial, progress=True)
    assert resource.progress is True and resource.resume_checkpoint == ""
    assert resource.load().config_hash == non_trivial.config_hash
    assert Path(resource.universe.watchlist).is_absolute()


def test_data_end_travels_as_written_and_resolves_at_load():
    rolling = RunConfig()
    assert _resource_config(rolling)["data"]["end"] is None
    future = RunConfig().with_overrides(**{"data.end": "2999-12-31"})
    values = _resource_config(future)
    assert values["data"]["end"] == "2999-12-31"
    loaded = RunConfigResource(**values).load()
    assert loaded.data.end == future.data.end < date(2999, 12, 31)
    assert loaded.notes and "2999-12-31 is after the last completed session" in loaded.notes[0]
    assert loaded.config_hash == future.config_hash


def test_load_can_follow_a_pinned_market_clock():
    resource = RunConfigResource(data={"start": "2020-01-02"})
    assert resource.load(last_session=date(2020, 6, 30)).data.end == date(2020, 6, 30)
