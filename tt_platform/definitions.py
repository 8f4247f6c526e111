"""The one Definitions object of tt-platform (workspace.yaml loads ``defs``).

Nothing here depends on the run: what a run computes comes in as Dagster run config
(``resources.run_config.config``), so the UI, ``dagster job launch`` and ``tt`` see one job.
"""

from __future__ import annotations

import dagster as dg

from tt_platform.defs.evaluation.assets import evaluation_report
from tt_platform.defs.features.assets import features
from tt_platform.defs.market_data.assets import bars
from tt_platform.defs.market_data.resources import BarSourceResource, MarketClockResource
from tt_platform.defs.platform.lineage import LineageIOManager
from tt_platform.defs.platform.resources import PlatformResource, RunConfigResource
from tt_platform.defs.training.assets import trained_policy
from tt_platform.defs.training.resources import MlflowResource
from tt_platform.defs.universe.assets import watchlist

ALL_ASSETS = [watchlist, bars, features, trained_policy, evaluation_report]

main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.assets(*ALL_ASSETS),
    description="The whole graph: watchlist -> bars -> features -> trained policy -> evaluation report.",
)

universe_job = dg.define_asset_job(
    "universe_job",
    selection=dg.AssetSelection.assets(watchlist),
    description="Record the watchlist snapshot (and mark months missing for added symbols).",
)

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[main_job, universe_job],
    resources={
        # settings come from the environment / .env at run time, never from Dagster config
        "platform": PlatformResource(),
        "run_config": RunConfigResource(),
        "bar_source": BarSourceResource(),
        "market_clock": MarketClockResource(),
        "mlflow": MlflowResource(),
        "lineage_io_manager": LineageIOManager(),
    },
)
