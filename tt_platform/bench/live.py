"""Latency of the paper/live trading loop: bar close -> orders, 50 symbols through the emulator.

What runs: a small PPO policy (the default env and basic feature set, trained for a few steps on
synthetic minute bars of 50 symbols, registered with its lineage: model SHA-256 and feature-set
hash) traded by a real ``LiveSession`` (``live.launch.prepare`` / ``build_session`` / ``run``)
over ib_insync on loopback against the bundled gateway emulator, run in a process of its own as
IB Gateway is, replaying the same synthetic minute bars as 5-second real-time bars. The warm
start reads the bars before the replay from the store (a throwaway schema, made as the storage
benchmark makes it; a durable server in the full run). Market orders, ``min_order_value`` 1,
``per_symbol_cap`` 1, shorts allowed and a 10M account, so most symbols trade every bar.

Two sessions, one after the other:

* live mode, orders to the emulator. Bar close -> every order handed to the IB client (the
  session's ``latencies_ms``; the target: p99 <= 50 ms), -> the last order written to the
  socket (ib_insync holds back what exceeds 45 messages a second, under IB's 50), -> the gateway
  acknowledged them all (``ack_latencies_ms``; context only: IB's pacing alone keeps 50 orders
  from all being acknowledged within 50 ms, and the client decodes the gateway's account and
  position updates for every fill while it waits);
* paper mode, the shared ``ExecutionCore`` filling at the bar's close. Bar close -> fills
  booked in the session's book, -> fills recorded in the store.

"Bar close" is where the session's own measure starts: its assembler hands over the completed
bar set. Before that the bar waits for the session's next poll (``POLL_SECONDS``); that wait,
from the arrival of the sub-bar completing the set, and the sum of both are rows of their own.
Per-stage medians (bars in, features + policy, decide, write-ahead, the rest: shadow prices and
hand-off, or the paper fill) and garbage-collection pauses inside decisions come from wrapping
the session's steps in this benchmark; the session itself is unchanged.

Pace: the emulator's clock releases one minute bar every ``SECONDS_PER_BAR`` real seconds (its
twelve 5-second bars spread over it), named in every row: slow enough that one bar's orders are
sent and acknowledged before the next bar, so the gateway is not what is measured.

Side by side: one decision's policy step (``PolicyRunner.extend`` of the bar set +
``evaluate``, on the live session's last window) against the same decision computed the way
training computes it (``compute_features`` + ``MarketData.from_frames`` over the window, then
the env's observation and action scheme); both must give the same target weights.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import select
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tt_platform.bench.harness import BenchResult, quiet_loggers

N_SYMBOLS = 50
SYMBOLS = tuple(f"LT{i:02d}" for i in range(N_SYMBOLS))
SEED = 11
# a Monday: the store holds the days before, the emulator replays from its open
REPLAY_START = pd.Timestamp("2024-03-11 13:30", tz="UTC")
HISTORY_START = pd.Timestamp("2024-03-06 00:00", tz="UTC")
LAST_SESSION = "2024-03-29"
TARGET_P99_MS = 50.0
CAPITAL = 10_000_000.0  # large enough that most bars' rebalancing rounds to at least one share
# real seconds per replayed minute bar, by quick: ~50 orders take ~1.1 s at 45 messages a second
SECONDS_PER_BAR = {False: {"live": 2.0, "paper": 1.0}, True: {"live": 1.5, "paper": 0.5}}
# 150: the p99 of 150 decisions lies between the 2nd and 3rd slowest, not on the one slowest
DECISIONS = {False: 150, True: 10}
STAGES = ("bars_in", "features_policy", "decide", "write_ahead")
PLACE_ORDER_MSG = b"3\0"  # IB API message id of placeOrder, first field after the length prefix


@dataclass
class DecisionTiming:
    """One decision of the session, in ms from the start of its decision step."""

    started_ns: int
    bar_end: pd.Timestamp
    stages: dict[str, float] = field(default_factory=dict)
    waited_ms: float | None = None  # completing sub-bar's arrival -> decision start
    gc_ms: float = 0.0  # garbage collection pauses inside the decision step
    last_order_written_ms: float | None = None
    fills_recorded_ms: float | None = None
    total_ms: float = 0.0
    sent_ms: float | None = None  # the session's own latency, when it sent orders
    ack_ms: float | None = None


@dataclass
class SessionRun:
    mode: str
    seconds_per_bar: float
    decisions: list[DecisionTiming]
    orders_sent: int
    errors: int
    status: str
    reason: str
    runner: Any  # the session's policy runner, holding its last window


# ---------------------------------------------------------------------------------- the policy
def minute_bars(symbols: tuple[str, ...] = SYMBOLS, start: pd.Timestamp = HISTORY_START,
                end: pd.Timestamp = REPLAY_START) -> pd.DataFrame:
    """The synthetic minute bars the emulator serves, before ``end``: training data and warm start."""
    from tt_platform.ib.emulator.sources import SyntheticBarSource

    source = SyntheticBarSource(list(symbols), seed=SEED, last_session=LAST_SESSION)
    bars = pd.concat([source.bars(s, start, end, "1min") for s in symbols], ignore_index=True)
    return bars[bars["ts"] < end].reset_index(drop=True)


def train_bench_policy(engine: Any, folder: Path, *, policy_id: str = "ppo-bench-live-50") -> str:
    """Train a small PPO policy on the 50 symbols' minute bars, store the bars (the warm start
    reads them) and register the policy with the lineage a session verifies; its id."""
    from tt_platform.config import RunConfig
    from tt_platform.pipeline.local_policy import train_registered_policy
    from tt_platform.store.prices import write_bars

    config = RunConfig().with_overrides(**{
        "universe.symbols": list(SYMBOLS), "data.interval": "1min", "training.total_timesteps": 64,
        "training.n_steps": 32, "training.batch_size": 32, "training.n_envs": 1, "training.seed": SEED,
        "training.eval_episode": False,
    })
    bars = minute_bars()
    write_bars(engine, bars, source="synthetic", interval="1min", adjusted=False)
    train_registered_policy(engine, bars, config, folder, policy_id=policy_id, code_version="bench")
    return policy_id


# ---------------------------------------------------------------------------------- the probe
class SessionProbe:
    """Times a session's decisions from outside: wraps its decision step, the steps inside it
    and the client's socket writes, and restores everything on exit."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.decisions: list[DecisionTiming] = []
        self._current: DecisionTiming | None = None
        self._arrivals: dict[tuple[str, int], int] = {}
        self._restore: list[Callable[[], None]] = []
        self._gc_started: int | None = None

    def _stage(self, name: str, function: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return function(*args, **kwargs)
            finally:
                current = self._current
                if current is not None:
                    current.stages[name] = current.stages.get(name, 0.0) + (time.perf_counter_ns() - started) / 1e6
        return timed

    def _patch(self, owner: Any, name: str, replacement: Any) -> None:
        had_own = name in getattr(owner, "__dict__", {})  # a module's or instance's own attribute
        original = getattr(owner, name)
        setattr(owner, name, replacement)
        if had_own:
            self._restore.append(lambda: setattr(owner, name, original))
        else:
            self._restore.append(lambda: delattr(owner, name))

    @contextlib.contextmanager
    def installed(self) -> Iterator[SessionProbe]:
        import tt_platform.live.session as session_module
        import tt_platform.store.live as live_store

        session = self.session
        runner = session.runner
        self._patch(runner, "extend", self._stage("bars_in", runner.extend))
        self._patch(runner, "last_closes", self._stage("bars_in", runner.last_closes))
        self._patch(runner, "evaluate", self._stage("features_policy", runner.evaluate))
        self._patch(session_module, "decide", self._stage("decide", session_module.decide))
        self._patch(live_store, "record_new_orders", self._stage("write_ahead", live_store.record_new_orders))
        self._patch(session, "_record_paper_fills", self._fills_recorded(session._record_paper_fills))
        self._patch(session, "_on_bar_set", self._decision(session._on_bar_set))
        self._patch(session.trading, "subscribe_realtime_bars",
                    self._subscribing(session.trading.subscribe_realtime_bars))
        gc.callbacks.append(self._on_gc)
        self._restore.append(lambda: gc.callbacks.remove(self._on_gc))
        try:
            yield self
        finally:
            for restore in reversed(self._restore):
                restore()
            self._restore.clear()

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter_ns()
        elif self._current is not None and self._gc_started is not None:
            self._current.gc_ms += (time.perf_counter_ns() - self._gc_started) / 1e6

    def _fills_recorded(self, function: Callable) -> Callable:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            current = self._current
            if current is not None:
                current.fills_recorded_ms = (time.perf_counter_ns() - current.started_ns) / 1e6
            return result
        return recorded

    def _subscribing(self, function: Callable) -> Callable:
        """The session sets ``on_realtime_bar`` just before it subscribes: stamp each sub-bar's
        arrival there, and each placeOrder message's write to the socket."""
        trading = self.session.trading

        async def subscribe(symbols: Any) -> Any:
            deliver = trading.on_realtime_bar

            def stamped(bar: Any) -> Any:
                self._arrivals[(bar.symbol, pd.Timestamp(bar.start).value)] = time.perf_counter_ns()
                return deliver(bar)

            trading.on_realtime_bar = stamped
            connection = trading._ib.client.conn
            write = connection.sendMsg

            def written(data: bytes) -> Any:
                result = write(data)
                current = self._current
                if current is not None and data[4:6] == PLACE_ORDER_MSG:
                    current.last_order_written_ms = (time.perf_counter_ns() - current.started_ns) / 1e6
                return result

            self._patch(connection, "sendMsg", written)
            return await function(symbols)

        return subscribe

    def _decision(self, function: Callable) -> Callable:
        session = self.session

        async def decision(bar_set: Any) -> None:
            started = time.perf_counter_ns()
            timing = DecisionTiming(started_ns=started, bar_end=pd.Timestamp(bar_set.end))
            last_sub_bar = (pd.Timestamp(bar_set.end) - pd.Timedelta(seconds=5)).value
            arrivals = [self._arrivals.pop((s, last_sub_bar), None) for s in bar_set.bars]
            if arrivals and None not in arrivals:
                timing.waited_ms = (started - max(arrivals)) / 1e6
            sent_before, acked_before = len(session.latencies_ms), len(session.ack_latencies_ms)
            decisions_before = session.decisions
            self._current = timing
            try:
                await function(bar_set)
            finally:
                self._current = None
            timing.total_ms = (time.perf_counter_ns() - started) / 1e6
            if len(session.latencies_ms) > sent_before:
                timing.sent_ms = session.latencies_ms[-1]
            if len(session.ack_latencies_ms) > acked_before:
                timing.ack_ms = session.ack_latencies_ms[-1]
            if session.decisions > decisions_before:
                self.decisions.append(timing)
            # sub-bars older than this bar are of no further use
            for key in [k for k in self._arrivals if k[1] < last_sub_bar]:
                del self._arrivals[key]

        return decision


# ---------------------------------------------------------------------------------- the gateway
def serve_gateway(seconds_per_bar: float) -> None:
    """The emulator replaying the bench's bars; prints its port, stops when stdin closes."""
    from tt_platform.ib.clock import ScaledClock
    from tt_platform.ib.emulator import GatewayEmulator, ReplayConfig
    from tt_platform.ib.emulator.sources import FrameBarSource

    logging.getLogger("tt_platform.ib.emulator").setLevel(logging.WARNING)
    # the synthetic bars generated once and served from memory: the synthetic source regenerates
    # them on every request, ~0.5 s of the gateway's CPU per replayed bar of 50 symbols
    source = FrameBarSource({"1min": minute_bars(end=REPLAY_START + pd.Timedelta(days=1))})
    step_seconds = 60.0  # one minute bar per step of the emulator's clock, as the market runs
    emulator = GatewayEmulator(
        source, clock=ScaledClock(step_seconds / seconds_per_bar), initial_cash=CAPITAL,
        replay=ReplayConfig(start=REPLAY_START, interval="1min", step_seconds=step_seconds))

    async def serve() -> None:
        print(await emulator.start(), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        await emulator.stop()

    asyncio.run(serve())


@contextlib.contextmanager
def gateway_process(seconds_per_bar: float, timeout: float = 120.0) -> Iterator[int]:
    """The emulator in a process of its own, as IB Gateway is: it shares neither the session's
    interpreter nor its GIL. Yields its port."""
    command = [sys.executable, "-m", "tt_platform.bench.live", "--serve-gateway", f"{seconds_per_bar:g}"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline().strip() if ready else ""
        if not line.isdigit():
            raise RuntimeError(f"the gateway emulator did not start within {timeout:g} s "
                               f"(exit code {process.poll()}): {line!r}")
        yield int(line)
    finally:
        process.stdin.close()  # the gateway's signal to stop
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(5)
        process.stdout.close()


# ---------------------------------------------------------------------------------- a session
def run_session(engine: Any, home: Path, policy_id: str, *, mode: str, decisions: int,
                seconds_per_bar: float) -> SessionRun:
    """One session of ``mode`` for ``decisions`` decisions against a replaying emulator."""
    from tt_platform.live.config import parse_live_config
    from tt_platform.live.launch import build_session, prepare, run
    from tt_platform.settings import PlatformSettings

    session_id = f"bench-{mode}-{uuid.uuid4().hex[:8]}"
    # data-gap warnings (the replay moves on while the session starts) and per-order lines are not
    # what is measured; a failed step still shows as errors in the decisions row
    with gateway_process(seconds_per_bar) as port, quiet_loggers("ib_insync", "tt_platform.ib", "tt_platform.live"):
        config = parse_live_config({
            "policy": f"policy:{policy_id}", "mode": mode, "clock": "feed", "max_decisions": decisions,
            "capital": CAPITAL, "report_dir": str(home / "reports"),
            "risk": {"long_only": False, "per_symbol_cap": 1.0, "leverage_cap": 2.0,
                     "daily_loss_limit": None, "max_session_drawdown": 1.0},
            "orders": {"order_type": "market", "min_order_value": 1.0},
            "ib": {"host": "127.0.0.1", "port": port},
        }, source="bench.live")
        settings = PlatformSettings(TT_HOME=str(home), IB_ACCOUNT=None)
        prepared = prepare(config, settings=settings, store=engine, tracker=None)
        session = build_session(prepared, session_id=session_id, run_id=session_id)
        # the warm start reads the store only: the replay starts where the stored bars end
        session.history = None
        probe = SessionProbe(session)
        with probe.installed():
            result = run(session)
    return SessionRun(mode, seconds_per_bar, probe.decisions, result.orders_sent, result.errors, result.status,
                      result.reason, session.runner)


# ---------------------------------------------------------------------------------- side by side
def from_scratch_decision(runner: Any, window: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
    """The target weights at the window's last bar as training computes them: features and
    market data rebuilt from the frame, then the env's observation and action scheme."""
    from tt_platform.env.components import WindowObserver
    from tt_platform.env.factory import make_action_scheme
    from tt_platform.env.market import MarketData
    from tt_platform.env.state import EpisodeState
    from tt_platform.features.compute import compute_features

    policy, env = runner.policy, runner.policy.env_config
    market = MarketData.from_frames(window, compute_features(window, policy.feature_set))
    state = EpisodeState(market, env)
    state.t = market.n_steps - 1
    state.weights = weights
    observation = WindowObserver(state, window=env.window_size, flat=env.observation == "flat",
                                 include_positions=env.include_positions, clip=env.obs_clip).observe(None)
    action, _ = runner.model.predict(observation, deterministic=True)
    return np.asarray(make_action_scheme(state, env).target_weights(action), dtype=np.float64)


def policy_step_side_by_side(held: Any, repeats: int) -> tuple[float, float, bool]:
    """Median ms of one decision's policy step -- the runner taking the last bar set and
    evaluating -- against the from-scratch decision on the same window, and whether both give
    the same target weights."""
    from tt_platform.live.policy_runner import PolicyRunner

    window = held.bars.copy()
    last = window["ts"] == window["ts"].max()
    weights = np.full(len(held.symbols), 0.5 / len(held.symbols))
    ours, scratch, same = [], [], True
    for _ in range(repeats):
        runner = PolicyRunner(held.policy, held.model, history_bars=held.history_bars)
        runner.extend(window[~last])
        started = time.perf_counter_ns()
        runner.extend(window[last])
        live = runner.evaluate(weights)
        ours.append((time.perf_counter_ns() - started) / 1e6)
        started = time.perf_counter_ns()
        reference = from_scratch_decision(runner, window, weights)
        scratch.append((time.perf_counter_ns() - started) / 1e6)
        same = same and bool(np.array_equal(live.target_weights, reference))
    return float(np.median(ours)), float(np.median(scratch)), same


# ---------------------------------------------------------------------------------- rows
def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _p50_p99(prefix: str, what: str, values: list[float], target: str, check: float | None = None
             ) -> list[BenchResult]:
    p99 = _percentile(values, 99)
    return [
        BenchResult(f"{prefix}.{what}.p50_ms", _percentile(values, 50), "ms", target=target),
        BenchResult(f"{prefix}.{what}.p99_ms", p99, "ms",
                    target=target if check is None else f"<= {check:g} ms",
                    passed=None if check is None else bool(values) and p99 <= check),
    ]


def results_for(run: SessionRun, n_decisions: int, quick: bool) -> list[BenchResult]:
    """The rows of one session: what it measured, named with its mode and pace."""
    prefix = f"live.{run.mode}_mode.{N_SYMBOLS}sym_{run.seconds_per_bar:g}s_bars" + ("_quick" if quick else "")
    traded = [d for d in run.decisions if d.sent_ms is not None]
    orders_each = run.orders_sent / max(1, len(traded))
    results = [
        BenchResult(f"{prefix}.decisions", len(run.decisions), "decisions", target=f"= {n_decisions}, 0 errors",
                    passed=len(run.decisions) == n_decisions and run.errors == 0),
        BenchResult(f"{prefix}.orders_per_decision", orders_each, "orders", target=f"most of {N_SYMBOLS} symbols",
                    passed=orders_each >= N_SYMBOLS / 2 and len(traded) >= 0.8 * len(run.decisions)),
    ]
    sent = [d.sent_ms for d in traded]
    if run.mode == "live":
        results += _p50_p99(prefix, "bar_close_to_orders_sent", sent, "handed to the IB client", TARGET_P99_MS)
        results += _p50_p99(prefix, "bar_close_to_last_order_on_socket",
                            [d.last_order_written_ms for d in traded if d.last_order_written_ms is not None],
                            "context: ib_insync sends <= 45 msg/s")
        results += _p50_p99(prefix, "bar_close_to_all_acknowledged", [d.ack_ms for d in traded if d.ack_ms is not None],
                            "context: IB paces messages at 50/s")
    else:
        results += _p50_p99(prefix, "bar_close_to_fills_booked", sent, "fills in the session's book", TARGET_P99_MS)
        results += _p50_p99(prefix, "bar_close_to_fills_recorded",
                            [d.fills_recorded_ms for d in traded if d.fills_recorded_ms is not None],
                            "context: fills written to the store")
    results += _p50_p99(prefix, "last_sub_bar_to_bar_close", [d.waited_ms for d in run.decisions if d.waited_ms is not None],
                        "context: waiting for the session's poll")
    results += _p50_p99(prefix, "last_sub_bar_to_orders_sent",
                        [d.waited_ms + d.sent_ms for d in traded if d.waited_ms is not None],
                        "context: end to end, poll included")
    results += _p50_p99(prefix, "decision_step_total", [d.total_ms for d in run.decisions],
                        "context: with the audit and mark writes")
    results.append(BenchResult(f"{prefix}.gc_pause_in_decision.max_ms", max((d.gc_ms for d in run.decisions), default=0.0),
                               "ms", target="context: garbage collection"))
    rest = "send" if run.mode == "live" else "fill"
    for stage in (*STAGES, rest):
        values = [d.sent_ms - sum(d.stages.get(s, 0.0) for s in STAGES) if stage == rest else d.stages.get(stage, 0.0)
                  for d in traded]
        results.append(BenchResult(f"{prefix}.stage.{stage}.p50_ms", _percentile(values, 50), "ms",
                                   target="context: stage median"))
    return results


def run(quick: bool = False) -> list[BenchResult]:
    from tt_platform.bench.store import _bench_schema

    n_decisions = DECISIONS[quick]
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="tt-bench-live-") as folder, _bench_schema(quick) as engine:
        home = Path(folder)
        policy_id = train_bench_policy(engine, home / "policies")
        runs = [run_session(engine, home, policy_id, mode=mode, decisions=n_decisions,
                            seconds_per_bar=SECONDS_PER_BAR[quick][mode]) for mode in ("live", "paper")]
        for session_run in runs:
            results += results_for(session_run, n_decisions, quick)
        ours, scratch, same = policy_step_side_by_side(runs[0].runner, repeats=5 if quick else 20)
        results.append(BenchResult(
            f"live.policy_step.{N_SYMBOLS}sym" + ("_quick" if quick else ""), ours, "ms",
            target="= from-scratch weights (ratio: speed-up)", baseline=scratch,
            ratio=scratch / ours if ours > 0 else None, passed=same))
    return results


if __name__ == "__main__":
    from tt_platform.bench.harness import format_table

    if sys.argv[1:2] == ["--serve-gateway"]:
        serve_gateway(float(sys.argv[2]))
    else:
        print(format_table(run(quick="--quick" in sys.argv)))
