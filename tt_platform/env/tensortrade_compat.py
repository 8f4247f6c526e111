"""Import tensortrade 1.0.3 without TensorFlow, gym or IPython.

tensortrade 1.0.3 is installed with ``pip install --no-deps`` because its declared dependencies
(TensorFlow, gym, numpy<2) cannot live next to numpy 2 / pandas 3. Its package ``__init__``
imports ``tensortrade.agents`` (TensorFlow), the env code imports ``gym.spaces`` and the default
renderers import ``IPython.display``. ``install_shims()`` puts light stand-ins into
``sys.modules`` before the first tensortrade import; the generic env and the default components
work unchanged on top of them.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_AGENTS = "tensortrade.agents"


def _stub_module(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    # Marks the module as a stand-in so nobody mistakes it for the real package.
    module.__dict__["__tt_platform_stub__"] = True
    return module


def _stub_agents() -> None:
    if _AGENTS in sys.modules:
        return

    class _AgentsUnavailable:
        """tensortrade's own TensorFlow agents are not installed; train with stable-baselines3."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            raise ImportError(
                "tensortrade.agents needs TensorFlow, which is not installed; "
                "use tt_platform.training (stable-baselines3) instead"
            )

    names = ["Agent", "ReplayMemory", "DQNAgent", "DQNTransition", "A2CAgent", "A2CTransition",
             "ParallelDQNAgent"]
    sys.modules[_AGENTS] = _stub_module(_AGENTS, **{n: _AgentsUnavailable for n in names})


def _alias_gym() -> None:
    if "gym" in sys.modules or importlib.util.find_spec("gym") is not None:
        return
    import gymnasium
    import gymnasium.spaces

    sys.modules["gym"] = gymnasium
    sys.modules["gym.spaces"] = gymnasium.spaces


def _stub_ipython_display() -> None:
    if "IPython.display" in sys.modules or importlib.util.find_spec("IPython") is not None:
        return

    def _no_display(*args: object, **kwargs: object) -> None:
        return None

    sys.modules.setdefault("IPython", _stub_module("IPython"))
    sys.modules["IPython.display"] = _stub_module(
        "IPython.display", display=_no_display, clear_output=_no_display
    )


def install_shims() -> None:
    """Idempotent; must run before the first ``import tensortrade``."""
    _stub_agents()
    _alias_gym()
    _stub_ipython_display()


def import_tensortrade() -> types.ModuleType:
    """Install the shims, then import and return the ``tensortrade`` package."""
    install_shims()
    try:
        return importlib.import_module("tensortrade")
    except ImportError as exc:  # names the missing piece instead of a deep traceback
        raise ImportError(
            f"tensortrade could not be imported ({exc}); install it with "
            "`pip install --no-deps tensortrade==1.0.3`"
        ) from exc


install_shims()
