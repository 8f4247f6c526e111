"""The one Definitions object of tt-platform (workspace.yaml loads ``defs``)."""

from __future__ import annotations

import os

import dagster as dg

from tt_platform.defs.evaluation.assets import evaluation_report
from tt_platform.defs.features.assets import features
from tt_platform.defs.market_data.assets import bars
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

defs = dg.Definitions(
    assets=ALL_ASSETS,
    jobs=[main_job],
    resources={
        # settings come from the environment / .env at run time, never from Dagster config
        "platform": PlatformResource(),
        "run_config": RunConfigResource(config_path=os.environ.get("TT_RUN_CONFIG", "")),
        "mlflow": MlflowResource(),
    },
)
