"""Trading environment: tensortrade's component model on the shared execution core.

Importing this package installs the tensortrade import shims first (see
``tensortrade_compat``), so ``import tensortrade`` works without TensorFlow or gym.
"""

from tt_platform.env.tensortrade_compat import import_tensortrade, install_shims

install_shims()

from tt_platform.env.config import EnvConfig  # noqa: E402
from tt_platform.env.factory import make_env  # noqa: E402
from tt_platform.env.market import MarketData, MarketDataError  # noqa: E402
from tt_platform.env.rollout import EpisodeRecord, policy_from_model, rollout  # noqa: E402

__all__ = [
    "EnvConfig",
    "EpisodeRecord",
    "MarketData",
    "MarketDataError",
    "import_tensortrade",
    "install_shims",
    "make_env",
    "policy_from_model",
    "rollout",
]
