"""Episode writes validate, then commit: a refused batch leaves the store exactly as it was.

Each test stores a good episode first, then writes a bad one under the same id (or appends or
finishes it badly) and checks the one-sentence message and that every tt_ table is unchanged.
"""

import re

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tt_platform.core.records import MAX_GROSS_EXPOSURE, RecordError
from tt_platform.env import EnvConfig, make_env, rollout
from tt_platform.store.episodes import (
    EpisodeRecordError,
    append_episode_steps,
    finish_episode,
    read_episode,
    write_episode,
)
from tt_platform.store.query import read_frame
from tt_platform.store.schema import metadata
from tt_platform.store.upsert import UpsertError
from tt_platform.training.episodes import episode_frames, portfolio_frames
from tt_platform_tests.env.markets import price_market, random_market

START = pd.Timestamp("2024-01-02", tz="UTC")
EPISODE = "ep-1"
ROW = {"episode_id": EPISODE, "policy_id": None, "kind": "eval", "started_at": START, "seed": 1}
INSTRUMENTS = ("AAA", "BBB")
# write_episode argument -> (frame name in messages, table)
FRAME_TABLES = {
    "actions_df": ("actions", "tt_action"),
    "rewards_df": ("rewards", "tt_reward"),
    "equity_df": ("equity", "tt_equity_curve"),
    "weights_df": ("weights", "tt_target_weights"),
    "portfolio_df": ("portfolio", "tt_portfolio"),
    "holdings_df": ("holdings", "tt_holdings"),
}


def frames(steps: int = 5) -> dict[str, pd.DataFrame]:
    """Frames shaped as the pipeline writes them (``training.episodes``): the equity curve marks
    steps 0..S, actions and weights of step i are stamped at the decision bar (mark i-1),
    rewards, portfolio and holdings at mark i."""
    marks = pd.date_range(START, periods=steps + 1, freq="D")
    taken = np.arange(1, steps + 1)

    def per_instrument(ts: pd.DatetimeIndex, column: str, value: float) -> pd.DataFrame:
        return pd.DataFrame(
            [(s, t, i, value) for s, t in zip(taken, ts) for i in INSTRUMENTS],
            columns=["step", "ts", "instrument", column],
        )

    return {
        "actions_df": per_instrument(marks[:-1], "action", 0.5),
        "rewards_df": pd.DataFrame({"step": taken, "ts": marks[1:], "reward": 0.01,
                                    "components": [{"log_return": 0.01}] * steps}),
        "equity_df": pd.DataFrame({"step": np.arange(steps + 1), "ts": marks, "equity": 1e5 + np.arange(steps + 1),
                                   "cash": 5e4, "gross_exposure": 0.5, "drawdown": 0.0}),
        "weights_df": per_instrument(marks[:-1], "weight", 0.25),
        "portfolio_df": pd.DataFrame({"step": taken, "ts": marks[1:], "cash": 5e4, "equity": 1e5, "leverage": 0.5}),
        "holdings_df": per_instrument(marks[1:], "quantity", 10.0).assign(market_value=1e3),
    }


def store_contents(engine) -> dict[str, pd.DataFrame]:
    """Every row of every tt_ table, in key order."""
    contents = {}
    for table in metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        contents[table.name] = read_frame(engine, sa.select(*table.columns).order_by(*order))
    return contents


def assert_unchanged(engine, before: dict[str, pd.DataFrame]) -> None:
    after = store_contents(engine)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(after[name], frame, obj=name)


@pytest.fixture
def stored(store_engine):
    """The store holding one good episode; yields the engine."""
    write_episode(store_engine, ROW, **frames())
    return store_engine


def refuse(engine, write, message: str) -> None:
    """``write()`` raises an EpisodeRecordError whose one sentence contains ``message``, and
    the store is exactly as it was."""
    before = store_contents(engine)
    with pytest.raises(EpisodeRecordError, match=re.escape(message)) as refused:
        write()
    text = str(refused.value)
    assert text.startswith(f"Episode {EPISODE!r}") and text.endswith(".") and "\n" not in text
    assert_unchanged(engine, before)


def rewrite(engine, message: str, row: dict | None = None, **changes) -> None:
    refuse(engine, lambda: write_episode(engine, ROW | (row or {}), **(frames() | changes)), message)


def changed(frame: pd.DataFrame, position: int, column: str, value) -> pd.DataFrame:
    frame = frame.copy()
    if isinstance(value, float) and frame[column].dtype.kind in "iuf":
        frame[column] = frame[column].astype("float64")
    elif not (isinstance(value, int) and frame[column].dtype.kind in "iu"):
        frame[column] = frame[column].astype(object)
    frame.loc[frame.index[position], column] = value
    return frame


# ----------------------------------------------------------------------------- what is accepted
def test_a_pipeline_rollout_with_portfolio_and_holdings_is_stored_as_written(store_engine):
    record = rollout(make_env(random_market(t=40, n=3), EnvConfig(window_size=10, long_only=False)),
                     lambda obs: np.full(3, 0.7))
    real = episode_frames(record, episode_id=EPISODE, policy_id=None, kind="eval", seed=3)
    portfolio_df, holdings_df = portfolio_frames(record, episode_id=EPISODE)
    written = write_episode(store_engine, real.episode, real.actions, real.rewards, real.equity,
                            real.target_weights, portfolio_df=portfolio_df, holdings_df=holdings_df)
    assert written["equity"] == record.n_steps + 1 and written["holdings"] == 3 * record.n_steps


def test_a_rollout_that_wipes_the_account_out_on_its_last_step_is_stored(store_engine):
    # ten times short one symbol that then rises 30 %: the last mark is below zero
    market = price_market(np.array([[100.0]] * 6 + [[130.0]] * 4))
    config = EnvConfig(window_size=2, long_only=False, leverage_cap=10, per_symbol_cap=10, action_scheme="discrete",
                       max_drawdown=1.0, equity_floor=0.0, random_start=False, episode_length=None)
    record = rollout(make_env(market, config), lambda obs: np.array([2]))
    assert record.equity[-1] < 0 and record.stop_reason == "equity_floor"
    real = episode_frames(record, episode_id=EPISODE, policy_id=None, kind="eval")
    write_episode(store_engine, real.episode, real.actions, real.rewards, real.equity, real.target_weights)
    assert read_episode(store_engine, EPISODE)["equity"]["equity"].iloc[-1] < 0


def test_missing_cash_is_stored_as_null_because_the_column_is_nullable(stored):
    equity = changed(frames()["equity_df"], 2, "cash", np.nan)
    write_episode(stored, ROW, **(frames() | {"equity_df": equity}))
    assert read_episode(stored, EPISODE)["equity"]["cash"].isna().tolist() == [False, False, True, False, False, False]


def test_refusals_are_record_errors_and_upsert_errors():
    # RecordError names the check that failed; UpsertError is what callers of the store catch
    assert issubclass(EpisodeRecordError, RecordError) and issubclass(EpisodeRecordError, UpsertError)


# ----------------------------------------------------------------------------- the episode row
def test_an_episode_row_without_started_at_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "started_at None is not a timestamp", row={"started_at": None})


def test_an_unknown_kind_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "kind 'bogus' is not one of ('train', 'eval', 'backtest', 'paper', 'live')", row={"kind": "bogus"})


def test_an_unknown_field_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "row has unknown fields ['colour']", row={"colour": "red"})


def test_an_ended_at_before_started_at_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "ended_at 2024-01-01T00:00:00+00:00 is before started_at 2024-01-02T00:00:00+00:00",
            row={"ended_at": START - pd.Timedelta(days=1)})


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True])
def test_a_seed_that_is_not_an_integer_in_0_to_2_32_is_refused_and_the_previous_log_is_kept(stored, seed):
    rewrite(stored, f"seed {seed!r} is not an integer in [0, 4294967295]", row={"seed": seed})


def test_an_unregistered_policy_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "its policy_id 'ghost' is not registered in tt_policy (foreign key)", row={"policy_id": "ghost"})


# ----------------------------------------------------------------------------- one step frame
def test_a_frame_without_a_step_column_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the rewards frame (tt_reward) lacks the required columns ['step']",
            rewards_df=frames()["rewards_df"].drop(columns="step"))


def test_a_frame_with_a_column_its_table_lacks_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the rewards frame (tt_reward) has columns ['colour'] that are not in the table",
            rewards_df=frames()["rewards_df"].assign(colour="red"))


def test_a_frame_holding_rows_of_another_episode_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the actions frame (tt_action) holds rows of other episodes ['ep-2']",
            actions_df=frames()["actions_df"].assign(episode_id="ep-2"))


def test_a_fractional_step_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the rewards frame (tt_reward) has step 2.5 at row 1, not an integer",
            rewards_df=changed(frames()["rewards_df"], 1, "step", 2.5))


def test_a_negative_step_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the equity frame (tt_equity_curve) has the negative step -1",
            equity_df=changed(frames()["equity_df"], 0, "step", -1))


def test_a_step_given_twice_is_refused_and_the_previous_log_is_kept(stored):
    rewards = frames()["rewards_df"]
    rewrite(stored, "the rewards frame (tt_reward) has step 2 more than once",
            rewards_df=pd.concat([rewards, rewards.iloc[[1]]], ignore_index=True))


def test_a_step_and_instrument_given_twice_is_refused_and_the_previous_log_is_kept(stored):
    weights = frames()["weights_df"]
    rewrite(stored, "the weights frame (tt_target_weights) has step 1, instrument 'AAA' more than once",
            weights_df=pd.concat([weights, weights.iloc[[0]]], ignore_index=True))


def test_an_empty_instrument_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the holdings frame (tt_holdings) has instrument '' at step 1, not a symbol",
            holdings_df=changed(frames()["holdings_df"], 0, "instrument", ""))


def test_an_equity_curve_with_nan_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the equity frame (tt_equity_curve) has a missing value (nan) in NOT NULL column 'equity' at step 3",
            equity_df=changed(frames()["equity_df"], 3, "equity", np.nan))


@pytest.mark.parametrize(
    ("argument", "column", "where"),
    [
        ("actions_df", "action", "step 2, instrument 'BBB'"),
        ("rewards_df", "reward", "step 4"),
        ("weights_df", "weight", "step 2, instrument 'BBB'"),
        ("portfolio_df", "cash", "step 4"),
        ("holdings_df", "quantity", "step 2, instrument 'BBB'"),
    ],
)
def test_nan_in_a_not_null_number_is_refused_and_the_previous_log_is_kept(stored, argument, column, where):
    name, table = FRAME_TABLES[argument]
    rewrite(stored, f"the {name} frame ({table}) has a missing value (nan) in NOT NULL column {column!r} at {where}",
            **{argument: changed(frames()[argument], 3, column, np.nan)})


@pytest.mark.parametrize(
    ("argument", "column", "value", "where"),
    [
        ("rewards_df", "reward", np.inf, "step 2"),
        ("equity_df", "cash", -np.inf, "step 1"),
        ("portfolio_df", "leverage", np.inf, "step 2"),
        ("holdings_df", "market_value", np.inf, "step 1, instrument 'BBB'"),
    ],
)
def test_an_infinite_number_is_refused_even_in_a_nullable_column_and_the_previous_log_is_kept(
    stored, argument, column, value, where
):
    name, table = FRAME_TABLES[argument]
    rewrite(stored, f"the {name} frame ({table}) has {value} in column {column!r} at {where}",
            **{argument: changed(frames()[argument], 1, column, value)})


def test_text_in_a_number_column_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the rewards frame (tt_reward) has 'lots' in column 'reward' at step 1, not a number",
            rewards_df=changed(frames()["rewards_df"], 0, "reward", "lots"))


def test_non_positive_equity_before_the_last_step_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the equity frame (tt_equity_curve) has equity 0.0 at step 2, but only the last step (here 5) "
                    "may have equity <= 0: a wiped-out account ends its episode",
            equity_df=changed(frames()["equity_df"], 2, "equity", 0.0))


def test_a_portfolio_wiped_out_before_its_last_step_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the portfolio frame (tt_portfolio) has equity -5.0 at step 1, but only the last step",
            portfolio_df=changed(frames()["portfolio_df"], 0, "equity", -5.0))


def test_target_weights_above_the_maximum_leverage_are_refused_and_the_previous_log_is_kept(stored):
    weights = changed(frames()["weights_df"], 4, "weight", -MAX_GROSS_EXPOSURE)
    rewrite(stored, "the weights frame (tt_target_weights) has a gross exposure (sum of |weight|) of 10.25 at "
                    "step 3, above the maximum leverage 10", weights_df=weights)


def test_target_weights_at_the_maximum_leverage_are_stored(stored):
    weights = frames()["weights_df"].assign(weight=-MAX_GROSS_EXPOSURE / len(INSTRUMENTS))
    write_episode(stored, ROW, **(frames() | {"weights_df": weights}))
    assert (read_episode(stored, EPISODE)["weights"]["weight"] == -5.0).all()


def test_timestamps_that_do_not_increase_with_step_are_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the rewards frame (tt_reward) has step 3 at 2024-01-03T00:00:00+00:00, not after step 2 at "
                    "2024-01-04T00:00:00+00:00: timestamps must increase with step",
            rewards_df=changed(frames()["rewards_df"], 2, "ts", pd.Timestamp("2024-01-03", tz="UTC")))


def test_two_timestamps_for_one_step_are_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the actions frame (tt_action) has two timestamps at step 1: 2024-01-02T00:00:00+00:00 and "
                    "2024-01-02T12:00:00+00:00",
            actions_df=changed(frames()["actions_df"], 1, "ts", pd.Timestamp("2024-01-02 12:00", tz="UTC")))


def test_a_missing_timestamp_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the rewards frame (tt_reward) has no ts at step 2",
            rewards_df=changed(frames()["rewards_df"], 1, "ts", None))


def test_timestamps_without_a_time_zone_are_refused_and_the_previous_log_is_kept(stored):
    rewards = frames()["rewards_df"]
    rewrite(stored, "the rewards frame (tt_reward) has timestamps without a time zone in column 'ts'",
            rewards_df=rewards.assign(ts=rewards["ts"].dt.tz_localize(None)))


def test_a_step_before_the_episode_started_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the actions frame (tt_action) has step 1 at 2024-01-02T00:00:00+00:00, before the "
                    "episode started (2024-01-03T00:00:00+00:00)", row={"started_at": START + pd.Timedelta(days=1)})


def test_a_step_after_the_episode_ended_is_refused_and_the_previous_log_is_kept(stored):
    rewrite(stored, "the rewards frame (tt_reward) has step 5 at 2024-01-07T00:00:00+00:00, after the episode "
                    "ended (2024-01-06T00:00:00+00:00)", row={"ended_at": START + pd.Timedelta(days=4)})


# ----------------------------------------------------------------------------- across frames
def test_actions_and_weights_of_different_steps_are_refused_and_the_previous_log_is_kept(stored):
    weights = frames()["weights_df"]
    rewrite(stored, "step 5 is in the actions frame only, but one decision books both an action and a target "
                    "weight, so both frames must cover the same steps",
            weights_df=weights[weights["step"] < 5])


def test_a_reward_without_a_point_on_the_equity_curve_is_refused_and_the_previous_log_is_kept(stored):
    equity = frames()["equity_df"]
    rewrite(stored, "step 5 has a reward but no point on the equity curve", equity_df=equity[equity["step"] < 5])


# ----------------------------------------------------------------------------- appends
def paper_episode(engine, steps: int = 3) -> dict[str, pd.DataFrame]:
    """A running episode holding the first ``steps`` steps; returns all frames of 5 steps."""
    every = frames()
    first = {name: frame[frame["step"] <= steps] for name, frame in every.items()}
    write_episode(engine, ROW | {"kind": "paper"}, **first)
    return every


def append_refused(engine, message: str, **batch) -> None:
    refuse(engine, lambda: append_episode_steps(engine, EPISODE, **batch), message)


def test_appended_steps_that_fit_after_the_stored_ones_are_written(store_engine):
    every = paper_episode(store_engine)
    later = {name.removesuffix("_df"): frame[frame["step"] > 3] for name, frame in every.items()}
    append_episode_steps(store_engine, EPISODE, **later)
    assert read_episode(store_engine, EPISODE)["equity"]["step"].tolist() == [0, 1, 2, 3, 4, 5]


def test_an_appended_step_stamped_before_a_stored_step_is_refused_and_nothing_is_appended(store_engine):
    rewards = paper_episode(store_engine)["rewards_df"]
    early = rewards[rewards["step"] == 4].assign(ts=START)
    append_refused(store_engine, "the rewards frame (tt_reward) has step 4 at 2024-01-02T00:00:00+00:00, not after "
                                 "step 3 at 2024-01-05T00:00:00+00:00", rewards=early)


def test_a_step_appended_after_a_wiped_out_step_is_refused_and_nothing_is_appended(store_engine):
    every = frames()
    equity = changed(every["equity_df"], 3, "equity", -1.0)
    write_episode(store_engine, ROW | {"kind": "paper"}, equity_df=equity[equity["step"] <= 3])
    append_refused(store_engine, "the equity frame (tt_equity_curve) has equity -1.0 at step 3, but only the last "
                                 "step (here 4) may have equity <= 0", equity=equity[equity["step"] == 4])


def test_a_bad_frame_in_an_append_appends_none_of_the_batch(store_engine):
    every = paper_episode(store_engine)
    actions = every["actions_df"][every["actions_df"]["step"] > 3]
    rewards = changed(every["rewards_df"][every["rewards_df"]["step"] > 3], 0, "reward", np.nan)
    append_refused(store_engine, "the rewards frame (tt_reward) has a missing value (nan) in NOT NULL column "
                                 "'reward' at step 4", actions=actions, rewards=rewards)


def test_a_step_appended_after_the_episode_ended_is_refused_and_nothing_is_appended(store_engine):
    every = paper_episode(store_engine)
    finish_episode(store_engine, EPISODE, ended_at=START + pd.Timedelta(days=3))
    rewards = every["rewards_df"]
    append_refused(store_engine, "the rewards frame (tt_reward) has step 4 at 2024-01-06T00:00:00+00:00, after the "
                                 "episode ended (2024-01-05T00:00:00+00:00)", rewards=rewards[rewards["step"] == 4])


# ----------------------------------------------------------------------------- finishing
def test_finishing_before_the_last_recorded_step_is_refused_and_the_episode_is_unchanged(store_engine):
    paper_episode(store_engine)
    refuse(store_engine, lambda: finish_episode(store_engine, EPISODE, ended_at=START + pd.Timedelta(days=2)),
           "ended_at 2024-01-04T00:00:00+00:00 is before its last recorded step at 2024-01-05T00:00:00+00:00")


def test_finishing_before_the_start_is_refused_and_the_episode_is_unchanged(stored):
    refuse(stored, lambda: finish_episode(stored, EPISODE, ended_at=START - pd.Timedelta(days=1)),
           "ended_at 2024-01-01T00:00:00+00:00 is before started_at 2024-01-02T00:00:00+00:00")
