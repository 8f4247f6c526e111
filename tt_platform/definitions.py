"""The one Definitions object of tt-platform (workspace.yaml loads ``defs``).

Nothing here depends on the run: what a run computes comes in as Dagster run config
(``resources.run_config.config``), so the UI, ``dagster job launch`` and ``tt`` see one job.
"""

from __future__ import annotations

import dagster as dg


from tt_platform.defs.alerts import SENSORS as ALERT_SENSORS
from tt_platform.defs.automation import JOBS as AUTOMATION_JOBS
from tt_platform.defs.automation import SCHEDULES
from tt_platform.defs.automation import SENSORS as AUTOMATION_SENSORS
from tt_platform.defs.evaluation.assets import evaluation_report
from tt_platform.defs.evaluation.tuning import tuning_worker_job
from tt_platform.defs.evaluation.walk_forward import (
    fold_evaluation,
    fold_policies,
    walk_forward_plan,
    walk_forward_report,
)
from tt_platform.defs.features.assets import features
from tt_platform.defs.live import TRADING_BOOK, live_session_job
from tt_platform.defs.market_data.assets import bars
from tt_platform.defs.market_data.resources import BarSourceResource, MarketClockResource
from tt_platform.defs.platform.lineage import LineageIOManager
from tt_platform.defs.platform.resources import PlatformResource, deployment_run_config_resource
from tt_platform.defs.training.assets import trained_policy
from tt_platform.defs.training.resources import MlflowResource
from tt_platform.defs.universe.assets import watchlist

MAIN_ASSETS = [watchlist, bars, features, trained_policy, evaluation_report]
WALK_FORWARD_ASSETS = [walk_forward_plan, fold_policies, fold_evaluation, walk_forward_report]
ALL_ASSETS = MAIN_ASSETS + WALK_FORWARD_ASSETS

main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.assets(*MAIN_ASSETS),
    description="The whole graph: watchlist -> bars -> features -> trained policy -> evaluation report.",
)

universe_job = dg.define_asset_job(
    "universe_job",
    selection=dg.AssetSelection.assets(watchlist),
    description="Record the watchlist snapshot (and mark months missing for added symbols).",
)

walk_forward_job = dg.define_asset_job(
    "walk_forward_job",
    selection=dg.AssetSelection.assets(*WALK_FORWARD_ASSETS),
    description="Walk-forward evaluation: plan the folds, then per fold (partition) train and evaluate, then the "
    "report and the promotion gate (tt walk-forward runs it all).",
)

# one mechanism per asset: features follow bars by their automation condition (this sensor);
# bars come from the nightly schedule and backfills, policies from the weekly schedule, and
# walk-forwards from the new-policy sensor
automation_sensor = dg.AutomationConditionSensorDefinition(
    "features_follow_bars",
    target=dg.AssetSelection.assets(features),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Evaluates the assets' automation conditions: features for every month whose bars changed.",
)

defs = dg.Definitions(
    assets=[*ALL_ASSETS, TRADING_BOOK],
    jobs=[main_job, universe_job, walk_forward_job, tuning_worker_job, live_session_job, *AUTOMATION_JOBS],
    schedules=SCHEDULES,
    sensors=[automation_sensor, *AUTOMATION_SENSORS, *ALERT_SENSORS],
    resources={
        # settings come from the environment / .env at run time, never from Dagster config
        "platform": PlatformResource(),
        # a run config given at launch wins over the deployment's
        "run_config": deployment_run_config_resource(),
        "bar_source": BarSourceResource(),
        "market_clock": MarketClockResource(),
        "mlflow": MlflowResource(),
        "lineage_io_manager": LineageIOManager(),
    },
)
