"""The ``tt`` command: run the platform's jobs on embedded defaults or a run config."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer

from tt_platform.config.run_config import Mode, RunConfig, RunConfigError, load_run_config
from tt_platform.data.watchlist import WatchlistError
from tt_platform.settings import get_settings, mask_url_password

app = typer.Typer(add_completion=False, help="tt-platform: RL trading on Interactive Brokers, orchestrated by Dagster.")

ConfigOption = typer.Option(None, "--config", "-c", help="Run config YAML (defaults: the built-in demo config).")
ModeOption = typer.Option(None, "--mode", help="backtest | paper | live")
IntervalOption = typer.Option(None, "--interval", help="Bar interval: 1d, 1h, 30min, 5min, 1min.")


def _fail(message: str) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _given(**options: object) -> dict:
    """The command-line options the user actually set, as dotted run-config overrides."""
    return {key.replace("__", "."): value for key, value in options.items() if value is not None}


def _resolve_config(config: Optional[Path], overrides: dict) -> tuple[RunConfig, dict]:
    try:
        return load_run_config(config).with_overrides(**overrides), overrides
    except (RunConfigError, WatchlistError) as exc:
        _fail(str(exc))


def _run_assets(selection: list[str], config_path: Optional[Path], overrides: dict, *, with_partitions: bool, **execution: object) -> dict:
    from tt_platform.orchestration import run_selection

    try:
        return run_selection(
            selection, config_path=config_path, overrides=overrides, with_partitions=with_partitions, progress=True, **execution
        )
    except (RunConfigError, WatchlistError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


def _print_outcome(outcome: dict) -> None:
    for asset, metadata in outcome["assets"].items():
        typer.secho(f"  {asset}", bold=True)
        for key, value in metadata.items():
            typer.echo(f"      {key}: {value}")
    if not outcome["success"]:
        _fail(f"run {outcome['run_id']} failed: {outcome.get('error', 'see the Dagster UI (make ui)')}")


@contextmanager
def _gateway_for(run_config: RunConfig, use_emulator: bool):
    """With ``use_emulator`` and an IB source, serve the run's symbols from the bundled gateway
    emulator and point IB_HOST/IB_PORT at it for the duration."""
    if not (use_emulator and run_config.data.source == "ib"):
        yield None
        return
    from tt_platform.pipeline.ib_source import local_gateway
    from tt_platform.pipeline.universe import resolve_watchlist

    try:
        symbols = resolve_watchlist(run_config).symbols
    except WatchlistError as exc:
        _fail(str(exc))
    saved = {k: os.environ.get(k) for k in ("IB_HOST", "IB_PORT")}
    with local_gateway(symbols, run_config.data.seed, get_settings()) as settings:
        os.environ.update({"IB_HOST": settings.ib_host, "IB_PORT": str(settings.ib_port)})
        try:
            yield settings.ib_port
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@app.command()
def demo(
    config: Optional[Path] = ConfigOption,
    mode: Optional[Mode] = ModeOption,
    interval: Optional[str] = IntervalOption,
    source: Optional[str] = typer.Option(
        None, "--source", help="ib | synthetic | csv (default: the config's; without --config, ib through the emulator)"
    ),
    emulator: bool = typer.Option(True, "--emulator/--no-emulator", help="Serve IB from the bundled gateway emulator."),
) -> None:
    """Materialize the whole graph: watchlist -> bars -> features -> policy -> evaluation report."""
    if source is None and config is None:
        source = "ib"  # the demo runs the real IB code path, against the emulator
    run_config, overrides = _resolve_config(config, _given(mode=mode, data__interval=interval, data__source=source))
    settings = get_settings()
    with _gateway_for(run_config, emulator) as port:
        via = f"IB Gateway emulator on 127.0.0.1:{port}" if port else run_config.data.source
        typer.echo(
            f"tt demo: {run_config.universe.watchlist or ','.join(run_config.universe.symbols)}, "
            f"{run_config.data.start}..{run_config.data.end} "
            f"{run_config.data.interval} via {via}; TT_HOME={settings.home}"
        )
        outcome = _run_assets(["*"], config, overrides, with_partitions=True)
    _print_outcome(outcome)
    report = outcome["assets"].get("evaluation_report", {}).get("report_path", "")
    typer.secho("\nDone.", fg=typer.colors.GREEN, bold=True)
    typer.echo(f"  Report:      {report}")
    typer.echo(f"  MLflow:      make mlflow-ui   (tracking store {mask_url_password(settings.mlflow_uri)})")
    typer.echo("  Dagster UI:  make ui          (then open http://127.0.0.1:3000, Assets -> Lineage)")


@app.command()
def ingest(
    config: Optional[Path] = ConfigOption,
    source: Optional[str] = typer.Option(None, "--source", help="synthetic | ib | csv"),
    symbols: Optional[str] = typer.Option(None, "--symbols", help="Comma-separated symbols (overrides the watchlist)."),
    start: Optional[str] = typer.Option(None, "--start", help="First day, YYYY-MM-DD."),
    end: Optional[str] = typer.Option(None, "--end", help="Last day, YYYY-MM-DD."),
    csv_dir: Optional[Path] = typer.Option(None, "--csv-dir", help="Folder of <SYMBOL>.csv files for --source csv."),
    interval: Optional[str] = IntervalOption,
    mode: Optional[Mode] = ModeOption,
    emulator: bool = typer.Option(False, "--emulator/--no-emulator", help="With --source ib: serve from the bundled gateway emulator."),
) -> None:
    """Ingest bars (and their quality checks) into tt_prices for the configured universe and range."""
    overrides = _given(
        mode=mode,
        data__source=source,
        data__interval=interval,
        data__start=start,
        data__end=end,
        data__csv_dir=str(csv_dir) if csv_dir else None,
    )
    if symbols:
        overrides["universe.symbols"] = [s.strip() for s in symbols.split(",") if s.strip()]
        overrides["universe.watchlist"] = None
    run_config, overrides = _resolve_config(config, overrides)
    with _gateway_for(run_config, emulator):
        _print_outcome(_run_assets(["watchlist", "bars"], config, overrides, with_partitions=True))


@app.command()
def train(
    config: Optional[Path] = ConfigOption,
    mode: Optional[Mode] = ModeOption,
    interval: Optional[str] = IntervalOption,
    features_too: bool = typer.Option(True, "--features/--no-features", help="Recompute features first."),
    resume_checkpoint: Optional[Path] = typer.Option(
        None, "--resume-checkpoint", help="Continue training from this checkpoint (folder or model.zip)."
    ),
) -> None:
    """Train a policy on stored bars and features, tracked in MLflow."""
    _, overrides = _resolve_config(config, _given(mode=mode, data__interval=interval))
    if resume_checkpoint is not None and not resume_checkpoint.exists():
        _fail(f"{resume_checkpoint}: checkpoint not found")
    selection = ["features", "trained_policy"] if features_too else ["trained_policy"]
    _print_outcome(
        _run_assets(selection, config, overrides, with_partitions=features_too, resume_checkpoint=resume_checkpoint)
    )


@app.command()
def evaluate(
    config: Optional[Path] = ConfigOption,
    mode: Optional[Mode] = ModeOption,
    interval: Optional[str] = IntervalOption,
) -> None:
    """Evaluate the latest trained policy out of sample against its baselines and write the report."""
    _, overrides = _resolve_config(config, _given(mode=mode, data__interval=interval))
    _print_outcome(_run_assets(["evaluation_report"], config, overrides, with_partitions=False))


@app.command("gateway-sim")
def gateway_sim(
    ctx: typer.Context,
) -> None:
    """Run the IB Gateway emulator (the TWS socket protocol, for ib_insync) on loopback."""
    from tt_platform.ib.emulator.__main__ import main

    raise typer.Exit(code=main(ctx.args) or 0)


gateway_sim_command = app.registered_commands[-1]
gateway_sim_command.context_settings = {"allow_extra_args": True, "ignore_unknown_options": True}


@app.command("corporate-actions")
def corporate_actions(
    path: Path = typer.Argument(..., help="File of split and dividend events."),
    fmt: str = typer.Option("csv", "--format", help="csv | quandl | zipline | lean"),
    symbol: Optional[str] = typer.Option(None, "--symbol", help="Symbol of the file (required for lean)."),
) -> None:
    """Load splits and dividends into tt_corporate_actions (used when data.adjusted is true)."""
    from tt_platform.pipeline.corporate_actions import import_actions
    from tt_platform.pipeline.store_access import open_store

    if not path.is_file():
        _fail(f"{path}: file not found")
    try:
        actions = import_actions(open_store(get_settings()), path, fmt, symbol)
    except ValueError as exc:
        _fail(str(exc))
    counts = actions.groupby(["symbol", "action_type"]).size()
    for (name, kind), count in counts.items():
        typer.echo(f"  {name}: {count} {kind}")
    typer.echo(f"stored {len(actions)} events")


@app.command()
def info() -> None:
    """Show the platform settings in effect (secrets masked)."""
    for key, value in get_settings().safe_dump().items():
        typer.echo(f"{key}={value}")


@app.command()
def ui(port: int = typer.Option(3000, "--port")) -> None:
    """Start the Dagster UI (webserver and daemon) on this machine's embedded or configured storage."""
    from tt_platform.runtime import prepare_dagster

    try:
        env = prepare_dagster(get_settings())
    except FileNotFoundError as exc:
        _fail(str(exc))
    typer.echo(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={env['DAGSTER_HOME']})")
    workspace = Path(env["DAGSTER_HOME"]) / "workspace.yaml"
    dagster = Path(sys.executable).with_name("dagster")
    os.execve(str(dagster), [str(dagster), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)], dict(os.environ))


@app.command("mlflow-ui")
def mlflow_ui(port: int = typer.Option(5000, "--port")) -> None:
    """Start the MLflow UI on the platform's tracking store."""
    settings = get_settings()
    typer.echo(f"MLflow UI on http://127.0.0.1:{port} (store {mask_url_password(settings.mlflow_uri)})")
    from tt_platform.training.tracking import resolve_backend

    backend = resolve_backend(settings.mlflow_uri)
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "ui", "--backend-store-uri", backend.store_uri, "-h", "127.0.0.1", "-p", str(port)]
    if backend.artifact_location:
        command += ["--default-artifact-root", backend.artifact_location]
    os.execv(str(mlflow), command)


if __name__ == "__main__":
    app()
