"""The ``tt`` command: run the platform's jobs on embedded defaults or a run config."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

from tt_platform.config.run_config import Mode, RunConfig, RunConfigError, load_run_config
from tt_platform.data.watchlist import WatchlistError
from tt_platform.settings import get_settings, mask_url_password

# Dagster marks backfill policies as beta; the warning says nothing a user of tt can act on
warnings.filterwarnings("ignore", message=".*is currently in beta.*")



class _App(typer.Typer):
    """The ``tt`` command. An error nobody anticipated ends with one line naming it and the file
    holding its full trace, never with a traceback on the terminal."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        try:
            return typer.main.get_command(self)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the last resort for the terminal
            trace = _write_trace(exc)
            where = f"; full trace in {trace}" if trace else ""
            first = " ".join(str(exc).split()) or "no message"
            typer.secho(f"tt: unexpected {type(exc).__name__}: {first[:500]}{where}", fg=typer.colors.RED, err=True)
            sys.exit(1)


def _write_trace(exc: BaseException) -> Path | None:
    import tempfile
    import traceback

    text = "".join(traceback.format_exception(exc))
    for folder in (os.environ.get("TT_HOME"), str(Path.cwd() / ".tt_home"), tempfile.gettempdir()):
        if not folder:
            continue
        path = Path(folder).expanduser() / "logs" / "tt-error.log"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


app = _App(add_completion=False, help="tt-platform: RL trading on Interactive Brokers, orchestrated by Dagster.")

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


def _database_url() -> str:
    """The platform database's URL once a connection to it has been opened; otherwise exit with
    one line naming host, port and database (never the password)."""
    from tt_platform.store.embedded import EmbeddedPostgresError
    from tt_platform.store.engine import StoreConfigError, check_connection, database_url

    try:
        url = database_url(get_settings())
        check_connection(url)
    except StoreConfigError as exc:
        _fail(str(exc))
    except EmbeddedPostgresError as exc:
        _fail(str(exc).strip().splitlines()[0])
    return url


def _run_assets(selection: list[str], config_path: Optional[Path], overrides: dict, *, with_partitions: bool, **execution: object) -> dict:
    from dagster import DagsterInvalidConfigError

    from tt_platform.orchestration import WorkspaceError, run_selection

    _database_url()
    try:
        return run_selection(
            selection,
            config_path=config_path,
            overrides=overrides,
            with_partitions=with_partitions,
            progress=True,
            on_event=_Progress(),
            **execution,
        )
    except (RunConfigError, WatchlistError, WorkspaceError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    except DagsterInvalidConfigError as exc:
        _fail(f"the run config does not fit the job: {exc}")


class _Progress:
    """Prints a run's progress from its events as they are stored: step starts and ends,
    materialization counts (at most every few seconds while a step runs), failed checks, and the
    steps' own messages (info and above)."""

    COUNT_EVERY_SECONDS = 3.0

    def __init__(self, prefix: str = "") -> None:
        # runs side by side (tt walk-forward --workers) share the terminal: each line names its run
        self._prefix = prefix
        self._started: dict[str, float] = {}
        self._materialized: dict[str, int] = {}
        self._shown_at: dict[str, float] = {}

    def _say(self, text: str, **style) -> None:
        typer.secho(f"{self._prefix}{text}", **style)

    def __call__(self, entry) -> None:
        from dagster._core.events import DagsterEventType

        from tt_platform.orchestration import error_message

        event = entry.dagster_event
        step = entry.step_key or ""
        if event is None:
            if entry.level >= logging.INFO and entry.user_message:
                prefix = f"  {step}: " if step else "  "
                warning = entry.level >= logging.WARNING
                self._say(f"{prefix}{'warning: ' if warning else ''}{entry.user_message}", fg=typer.colors.YELLOW if warning else None)
            return
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            self._say(f"run {entry.run_id} started")
        elif kind == DagsterEventType.STEP_START:
            self._started[step] = entry.timestamp
            self._say(f"  {step}: started", bold=True)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            self._materialized[step] = self._materialized.get(step, 0) + 1
            count, since = self._materialized[step], self._shown_at.get(step, self._started.get(step, entry.timestamp))
            if count > 1 and entry.timestamp - since >= self.COUNT_EVERY_SECONDS:
                self._shown_at[step] = entry.timestamp
                self._say(f"  {step}: {count} materializations so far")
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                severity = getattr(getattr(evaluation, "severity", None), "value", "ERROR")
                self._say(
                    f"  check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed ({severity})",
                    fg=typer.colors.YELLOW,
                )
        elif kind == DagsterEventType.STEP_SUCCESS:
            took = entry.timestamp - self._started.get(step, entry.timestamp)
            count = self._materialized.get(step, 0)
            self._say(f"  {step}: done in {took:.1f} s, {count} materialization{'s' if count != 1 else ''}", fg=typer.colors.GREEN)
        elif kind == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            reason = error_message(error) if error is not None else "failed"
            self._say(f"  {step}: failed: {reason}", fg=typer.colors.RED)
        elif kind not in (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED) and entry.level >= logging.WARNING:
            self._say(f"  {step + ': ' if step else ''}warning: {event.message or kind.value}", fg=typer.colors.YELLOW)


WALK_FORWARD_JOB = "walk_forward_job"  # tt_platform.orchestration.WALK_FORWARD_JOB (imported lazily there)
# lineage handles are for downstream assets (and the UI); the terminal shows what they point to
HIDDEN_METADATA = {"handle", "handle_type"}


def _print_outcome(outcome: dict) -> None:
    _print_metadata(outcome)
    _fail_if_failed(outcome)


def _print_metadata(outcome: dict) -> None:
    for asset, metadata in outcome["assets"].items():
        typer.secho(f"  {asset}", bold=True)
        for key, value in metadata.items():
            if key in HIDDEN_METADATA:
                continue
            typer.echo(f"      {key}: {value}")


def _fail_if_failed(outcome: dict) -> None:
    if not outcome["success"]:
        # the last line: the root cause, with the run to look up in the UI
        verb = "was canceled" if outcome.get("status") == "CANCELED" else "failed"
        run_id = outcome["run_id"]
        logs = f"; step output in {outcome['compute_logs']}" if outcome.get("compute_logs") else ""
        typer.secho(
            f"run {run_id} {verb}: {outcome.get('error')} (full log: `tt ui` -> Runs -> {run_id[:8]}{logs})",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=1)


def _with_emulator(run_config: RunConfig, overrides: dict, use_emulator: bool) -> tuple[RunConfig, dict]:
    """With ``use_emulator``, an IB source becomes the bundled IB Gateway emulator, which the run
    starts itself and reads through ib_insync like a real gateway."""
    if not (use_emulator and run_config.data.source == "ib"):
        return run_config, overrides
    try:
        return run_config.with_overrides(**{"data.source": "emulator"}), overrides | {"data.source": "emulator"}
    except RunConfigError as exc:
        _fail(str(exc))


@app.command()
def demo(
    config: Optional[Path] = ConfigOption,
    mode: Optional[Mode] = ModeOption,
    interval: Optional[str] = IntervalOption,
    source: Optional[str] = typer.Option(
        None, "--source", help="synthetic | csv | ib | emulator (default: the config's; without --config, the emulator)"
    ),
    emulator: bool = typer.Option(True, "--emulator/--no-emulator", help="Serve IB from the bundled gateway emulator."),
) -> None:
    """Materialize the whole graph: watchlist -> bars -> features -> policy -> evaluation report."""
    if source is None and config is None:
        source = "ib"  # the demo runs the real IB code path, against the emulator unless --no-emulator
    run_config, overrides = _resolve_config(config, _given(mode=mode, data__interval=interval, data__source=source))
    run_config, overrides = _with_emulator(run_config, overrides, emulator)
    settings = get_settings()
    via = "the bundled IB Gateway emulator" if run_config.data.source == "emulator" else run_config.data.source
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
    typer.echo(f"  Dagster UI:  make ui          (then open http://127.0.0.1:3000, Runs -> {outcome['run_id'][:8]})")


@app.command()
def ingest(
    config: Optional[Path] = ConfigOption,
    source: Optional[str] = typer.Option(None, "--source", help="synthetic | csv | ib | emulator"),
    symbols: Optional[str] = typer.Option(
        None, "--symbols", help="Comma-separated symbols to fetch (a subset run; the universe stays the watchlist's)."
    ),
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
        # a subset run: fetch these symbols' bars; the universe (the watchlist) stays as it is
        overrides["data.symbols"] = [s.strip() for s in symbols.split(",") if s.strip()]
    run_config, overrides = _resolve_config(config, overrides)
    run_config, overrides = _with_emulator(run_config, overrides, emulator)
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


@app.command("walk-forward")
def walk_forward(
    config: Optional[Path] = ConfigOption,
    mode: Optional[Mode] = ModeOption,
    interval: Optional[str] = IntervalOption,
    features_too: bool = typer.Option(True, "--features/--no-features", help="Recompute features first."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Folds trained at once, each in its own process and Dagster run (up to one per core)."
    ),
) -> None:
    """Walk-forward evaluation: fold the stored data, train and judge each fold only on its own
    out-of-sample slice, stitch, deflate and gate (evaluation.walk_forward and evaluation.gate)."""
    from tt_platform.orchestration import fold_partition_keys

    _, overrides = _resolve_config(config, _given(mode=mode, data__interval=interval))
    if features_too:
        _print_outcome(_run_assets(["features"], config, overrides, with_partitions=True))
    _print_outcome(_run_assets(["walk_forward_plan"], config, overrides, with_partitions=False, job_name=WALK_FORWARD_JOB))
    keys = fold_partition_keys()
    if workers == 1:
        for number, key in enumerate(keys, start=1):
            typer.secho(f"fold {number}/{len(keys)}: {key}", bold=True)
            _print_outcome(_run_assets(
                ["fold_policies", "fold_evaluation"], config, overrides, with_partitions=False,
                job_name=WALK_FORWARD_JOB, partition_key=key,
            ))
    else:
        _run_folds_side_by_side(keys, workers, config, overrides)
    _print_outcome(_run_assets(["walk_forward_report"], config, overrides, with_partitions=False, job_name=WALK_FORWARD_JOB))


def _run_folds_side_by_side(keys: list[str], workers: int, config: Optional[Path], overrides: dict) -> None:
    """``workers`` fold runs at a time, each in its own process; every line says which fold."""
    from dagster import DagsterInvalidConfigError

    from tt_platform.orchestration import WorkspaceError, run_partitions

    _database_url()
    typer.secho(f"{len(keys)} folds, {min(workers, len(keys))} at a time", bold=True)
    finished: list[str] = []

    def fold_done(key: str, outcome: dict) -> None:
        finished.append(key)
        state = "done" if outcome["success"] else outcome.get("status", "FAILURE").lower()
        typer.secho(f"fold {len(finished)}/{len(keys)} {state}: {key} (run {outcome['run_id']})", bold=True,
                    fg=typer.colors.GREEN if outcome["success"] else typer.colors.RED)
        _print_metadata(outcome)

    try:
        outcomes = run_partitions(
            ["fold_policies", "fold_evaluation"], keys, workers=workers, config_path=config, overrides=overrides,
            job_name=WALK_FORWARD_JOB, on_event_for=lambda key: _Progress(prefix=f"[{key.split('_', 1)[0]}] "),
            on_outcome=fold_done,
        )
    except (RunConfigError, WatchlistError, WorkspaceError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    except DagsterInvalidConfigError as exc:
        _fail(f"the run config does not fit the job: {exc}")
    for outcome in outcomes:
        _fail_if_failed(outcome)  # the first failed fold's root cause is the last line


@app.command()
def tune(
    config: Optional[Path] = ConfigOption,
    trials: int = typer.Option(20, "--trials", min=1, help="Trials this command runs (split over --workers processes)."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", min=1, help="Seconds after which no new trial starts (the running ones finish)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes on this machine, all adding to one study."),
    storage: Optional[str] = typer.Option(
        None, "--storage", help="Optuna storage URL (default: the platform database, schema tt_optuna)."
    ),
) -> None:
    """Hyperparameter search with Optuna (evaluation.tuning): every trial trains the walk-forward's
    folds and is scored on their validation windows only, never the test folds. Every `tt tune`
    with the same config on a machine that reaches the platform database joins the same study."""
    from tt_platform.pipeline.tuning import run_tuning, worker_command
    from tt_platform.store.engine import StoreConfigError, connect_store

    run_config, _ = _resolve_config(config, {})
    _database_url()  # one line naming the server (never the password) when it cannot be reached
    settings = get_settings()
    engine = connect_store(settings)
    try:
        result = run_tuning(engine, run_config, settings, n_trials=trials, workers=workers, timeout=timeout,
                            storage_url=storage)
    except (ValueError, LookupError, StoreConfigError) as exc:
        _fail(str(exc))
    finally:
        engine.dispose()
    typer.secho(f"study {result.study_name} in {result.storage}", bold=True)
    typer.echo(f"  trials: {result.trials_run} run now; the study holds {result.completed_trials} completed, "
               f"{result.recorded_trials} counted by the walk-forward's deflated Sharpe")
    if result.best_value is None:
        typer.echo("  no completed trial yet")
    else:
        typer.echo(f"  best: trial {result.best_trial}, mean validation Sharpe {result.best_value:.3f}")
        for key, value in sorted(result.best_params.items()):
            typer.echo(f"      training.{key}: {value}")
    typer.echo(f"more workers, on any machine whose TT_DB_URL is this database: "
               f"{worker_command(str(config) if config else None, trials, storage=storage is not None)}")


@app.command()
def evaluate(
    config: Optional[Path] = ConfigOption,
    mode: Optional[Mode] = ModeOption,
    interval: Optional[str] = IntervalOption,
) -> None:
    """Evaluate the policy of the latest trained_policy materialization out of sample against its baselines."""
    _, overrides = _resolve_config(config, _given(mode=mode, data__interval=interval))
    _print_outcome(_run_assets(["evaluation_report"], config, overrides, with_partitions=False))


@app.command()
def stress(
    config: Optional[Path] = ConfigOption,
    policy: Optional[str] = typer.Option(
        None, "--policy", help="Stress the last target weights of this policy's newest stored episode."
    ),
    weights: Optional[str] = typer.Option(
        None, "--weights", help="Weights to stress, e.g. SPY=0.5,QQQ=0.5 (default: equal weight over the universe)."
    ),
    equity: Optional[float] = typer.Option(None, "--equity", help="Portfolio value (default: env.initial_cash)."),
    daily_loss_limit: Optional[float] = typer.Option(
        None, "--daily-loss-limit", help="Daily kill switch as a fraction, e.g. 0.03 (not in the env config; default off)."
    ),
    rebalance: bool = typer.Option(
        False, "--rebalance/--hold", help="Return to the starting weights every bar, or hold (only the gate trades)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated paths."),
) -> None:
    """Shock a portfolio (10% gap, volatility x3 for a month, largest position -50%, correlation
    spike) at the last stored close: the loss and what the risk gate does."""
    from datetime import timedelta

    from tt_platform.core.costs import CostModel
    from tt_platform.data.watchlist import WatchlistError
    from tt_platform.evaluation import stress as st
    from tt_platform.pipeline.compare import format_table
    from tt_platform.pipeline.store_access import open_store
    from tt_platform.pipeline.universe import resolve_watchlist
    from tt_platform.pipeline.windows import day_end, day_start
    from tt_platform.store.episodes import list_episodes, read_episode
    from tt_platform.store.prices import read_bars

    if policy and weights:
        _fail("give --policy or --weights, not both")
    run_config, _ = _resolve_config(config, {})
    env, data = run_config.env, run_config.data
    try:
        limits = st.risk_limits_from_env(env, daily_loss_limit=daily_loss_limit)
        chosen = st.parse_weights(weights) if weights else None
    except ValueError as exc:
        _fail(str(exc))
    if equity is not None and not equity > 0:
        _fail(f"--equity must be > 0, got {equity}")
    _database_url()
    engine = open_store(get_settings())
    if policy:
        episodes = list_episodes(engine, policy_id=policy)
        if episodes.empty:
            _fail(f"no stored episode of policy {policy!r}; evaluate it first (tt evaluate)")
        log = read_episode(engine, episodes.iloc[0]["episode_id"])
        try:
            chosen = st.last_step_weights(log["weights"])
        except ValueError as exc:
            _fail(f"policy {policy!r}, episode {episodes.iloc[0]['episode_id']}: {exc}")
    try:
        symbols = list(chosen) if chosen else list(resolve_watchlist(run_config).symbols)
    except WatchlistError as exc:
        _fail(str(exc))
    start = max(data.start, data.end - timedelta(days=200))  # enough daily bars for the recent volatility
    bars = read_bars(engine, symbols, day_start(start), day_end(data.end), interval=data.interval, adjusted=data.adjusted)
    if bars.empty:
        _fail(f"no stored {data.interval} bars of {', '.join(symbols)} in {start}..{data.end}; ingest them first (tt ingest)")
    try:
        closes = st.closes_from_bars(bars).reindex(columns=symbols)
        state = st.state_from_closes(closes, equity or env.initial_cash, chosen)
        frame = st.run_stress(
            state, limits, st.STANDARD_SCENARIOS, seed, policy="rebalance" if rebalance else "hold",
            cost_model=CostModel(env.commission_bps, env.slippage_bps, env.min_commission),
        )
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"tt stress: {st.describe_state(state)} at the {closes.index[-1]:%Y-%m-%d} close")
    typer.echo(f"  gate: {st.describe_limits(limits)}; {'rebalancing to the weights' if rebalance else 'holding'}, seed {seed}")
    for breach in st.starting_breaches(state, limits):
        typer.secho(f"  note: the starting weights already breach the gate ({breach})", fg=typer.colors.YELLOW)
    typer.echo(format_table(frame[list(st.DISPLAY_COLUMNS)]))
    for row in frame.itertuples():
        typer.echo(f"  {row.scenario}: {row.gate_actions}")


@app.command()
def compare(
    experiment: str = typer.Option("tt-platform", "--experiment", help="MLflow experiment."),
    walk_forward: Optional[str] = typer.Option(
        None, "--walk-forward", help="Only this walk-forward's runs (its plan key, or the key's start)."
    ),
    policy: Optional[list[str]] = typer.Option(None, "--policy", help="Only this policy's run; repeat for several."),
    metric: Optional[list[str]] = typer.Option(
        None, "--metric", help="MLflow metric to show; repeat for several (default: in- and out-of-sample "
                               "Sharpe, return and drawdown, and the baselines' out-of-sample Sharpe)."
    ),
    walk_forwards: bool = typer.Option(
        False, "--walk-forwards",
        help="One row per walk-forward (its own out-of-sample metrics, else the mean over its fold runs).",
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="Show at most this many rows."),
) -> None:
    """Trained policies side by side from MLflow: in-sample next to out-of-sample metrics, best
    out-of-sample Sharpe first."""
    from tt_platform.pipeline.compare import compare_runs, format_table

    settings = get_settings()
    try:
        frame = compare_runs(
            settings.mlflow_uri, experiment, walk_forward=walk_forward, policies=policy or None,
            metrics=metric or None, limit=limit, kind="walk_forward" if walk_forwards else "training",
        )
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(format_table(frame))


@app.command("gateway-sim", add_help_option=False)  # --help is the emulator's own
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
    from tt_platform.pipeline.store_access import open_store

    from tt_platform.pipeline.corporate_actions import read_actions_file, store_actions

    if not path.is_file():
        _fail(f"{path}: file not found")
    try:
        actions = read_actions_file(path, fmt, symbol)
    except ValueError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{path}: cannot read the file: {exc.strerror or exc}")
    _database_url()
    try:
        actions = store_actions(open_store(get_settings()), actions, path, fmt)
    except ValueError as exc:
        _fail(str(exc))
    counts = actions.groupby(["symbol", "action_type"]).size()
    for (name, kind), count in counts.items():
        typer.echo(f"  {name}: {count} {kind}")
    typer.echo(f"stored {len(actions)} events")


@app.command("launch-config")
def launch_config(
    config: Optional[Path] = ConfigOption,
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of printing."),
) -> None:
    """Turn a platform run config into the Dagster run config the Launchpad and
    ``dagster job launch -c`` take (the config itself, every key; no file path)."""
    import json

    from tt_platform.defs.market_data.partitions import range_tags
    from tt_platform.defs.platform.resources import dagster_run_config_yaml

    run_config, _ = _resolve_config(config, {})
    text = dagster_run_config_yaml(run_config)
    tags = json.dumps(range_tags(run_config.data.start, run_config.data.end))
    hint = (
        f"# config hash {run_config.config_hash}\n"
        f"# dagster job launch -w workspace.yaml -j main_job -c <this file> --tags '{tags}'\n"
    )
    if output is None:
        typer.echo(hint + text)
    else:
        output.write_text(hint + text, encoding="utf-8")
        typer.echo(f"wrote {output}; launch with: dagster job launch -w workspace.yaml -j main_job -c {output} --tags '{tags}'")


@app.command()
def live(
    config: Path = typer.Option(..., "--config", "-c", help="Session config (paper.yaml): ops.trading_session.config."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Verify the policy, connect, warm start and show the orders the last bar would "
        "give; send and store nothing."),
) -> None:
    """Run a paper or live trading session as a run of the live_session job (stop it with Ctrl-C or
    Terminate in the UI); with --dry-run, show what it would do and exit."""
    from tt_platform.live.config import LIVE_JOB, LIVE_OP, LiveConfigError, load_live_config

    try:
        session_config = load_live_config(config)
    except LiveConfigError as exc:
        _fail(str(exc))
    if dry_run:
        _live_dry_run(session_config)
        return
    from tt_platform.orchestration import WorkspaceError, run_job

    _database_url()
    run_config = {"ops": {LIVE_OP: {"config": session_config.model_dump(mode="json")}}}
    try:
        outcome = run_job(LIVE_JOB, run_config, on_event=_Progress())
    except (WorkspaceError, ValueError) as exc:
        _fail(str(exc))
    if outcome.get("status") == "CANCELED":
        typer.echo(f"run {outcome['run_id']} canceled: the session stopped cleanly")
        return
    _fail_if_failed(outcome)


def _live_dry_run(session_config) -> None:
    from tt_platform.live.launch import build_session, prepare, preview
    from tt_platform.live.policy_source import PolicyResolutionError, PolicyVerificationError
    from tt_platform.pipeline.store_access import open_store
    from tt_platform.training.tracking import MlflowTracker

    settings = get_settings()
    _database_url()
    store = open_store(settings)
    config = session_config.model_copy(update={"dry_run": True})
    try:
        prepared = prepare(config, settings=settings, store=store, tracker=MlflowTracker(settings.mlflow_uri))
    except (ValueError, PolicyResolutionError, PolicyVerificationError) as exc:
        _fail(str(exc))
    policy = prepared.policy
    typer.echo(f"policy {policy.policy_id} ({policy.version_label}): model {policy.model_path}")
    typer.echo(f"  model SHA-256 {policy.model_sha256} matches its lineage; feature set {policy.feature_set.name} "
               f"{policy.feature_set_hash} matches")
    typer.echo(f"  {policy.interval} bars of {', '.join(policy.symbols)}; trained until {policy.train_end}")
    typer.echo(f"{config.mode} session on IB {prepared.ib_host}:{prepared.ib_port}, capital {config.capital:,.2f}")
    session = build_session(prepared, session_id="dry-run", run_id=None)
    try:
        decision, output = preview(session)
    except (ConnectionError, OSError, ValueError) as exc:
        _fail(f"dry run: {exc}")
    typer.echo(f"last completed bar {decision.bar_time:%Y-%m-%d %H:%M %Z}: market {'open' if decision.market_open else 'closed'}, "
               f"verdict {decision.verdict}" + (f" ({decision.describe_breaches()})" if decision.breaches else ""))
    typer.echo("  symbol    price   target   gated")
    for i, symbol in enumerate(decision.symbols):
        typer.echo(f"  {symbol:<6} {output.prices[i]:>9.2f} {decision.requested_weights[i]:>8.3f} {decision.gated_weights[i]:>7.3f}")
    if decision.orders:
        typer.echo(f"orders it would send ({len(decision.orders)}), none sent:")
        for order, ref in zip(decision.orders, decision.order_refs, strict=True):
            price = f" limit {order.limit_price:.2f}" if order.limit_price else ""
            typer.echo(f"  {order.side:<4} {abs(order.quantity):>10.2f} {order.symbol:<6} {order.order_type.value}{price}  ref {ref}")
    else:
        typer.echo("no orders: the book already matches the targets, or the guardrails hold it")


@app.command()
def info() -> None:
    """Show the platform settings in effect (secrets masked), then check that the database answers."""
    for key, value in get_settings().safe_dump().items():
        typer.echo(f"{key}={value}")
    from tt_platform.store.engine import server_location

    location = server_location(_database_url())
    typer.echo(f"database: connected to PostgreSQL at {location}")


@app.command()
def ui(port: int = typer.Option(3000, "--port")) -> None:
    """Start the Dagster UI (webserver and daemon) on this machine's embedded or configured storage;
    Ctrl-C or SIGTERM stops both."""
    from tt_platform.runtime import prepare_ui
    from tt_platform.ui_process import Supervisor, dagster_ui_commands

    _database_url()
    try:
        setup = prepare_ui(get_settings())
    except FileNotFoundError as exc:
        _fail(str(exc))
    typer.echo(f"Dagster UI on http://127.0.0.1:{port} (DAGSTER_HOME={setup.dagster_home}; Ctrl-C stops it)")
    commands = dagster_ui_commands(setup.workspace, host="127.0.0.1", port=port)
    env = {**os.environ, **setup.environment}
    env.setdefault("TT_UI_URL", f"http://127.0.0.1:{port}")  # the run links of failure alerts
    outcome = Supervisor(commands, env=env).run()
    if outcome.problem:
        typer.secho(f"tt ui: {outcome.problem}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=outcome.exit_code)


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
