"""How the assets read in the Dagster UI: a few groups that show the pipeline in one view, owners,
and kinds (at most three per asset: Dagster shows no more)."""

MARKET_DATA = "market_data"  # the universe and its bars
RESEARCH = "research"  # features, policies and their evaluation
TRADING = "trading"  # the paper and live loop

DATA_TEAM = "team:market-data"
RESEARCH_TEAM = "team:research"
