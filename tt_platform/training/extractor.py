"""Policy input layers that fit the trading env's observation, for SB3 policies.

The env observes a [symbols, rows, window] tensor (``WindowObserver``: one row per feature, plus
the symbol's current weight as a last row when ``include_positions``), flattened for
``MlpPolicy``. SB3's default ``FlattenExtractor`` feeds all symbols x rows x window values into
the first layer of both the policy and the value network, so that layer's cost grows with
symbols x rows x window x layer width: on 30 symbols x 9 rows x window 30 it is two
8,100 x 64 matrices, and PPO training is bound by them rather than by the env.

``SharedSymbolExtractor`` instead reads each symbol's rows through one small encoder shared by
all symbols:

1. temporal pooling: per symbol and row, the last value and the mean over the window
   (one pass over the observation, no learned weights, no gradient);
2. a shared per-symbol encoder ``Linear(2 x rows, symbol_dim) + ReLU`` (the same weights for
   every symbol);
3. output: every symbol's embedding, in symbol order (the policy's actions are per symbol, so
   each action must see its own symbol), followed by the mean embedding over symbols (market
   context); ``features_dim = (symbols + 1) x symbol_dim``.

The encoder's parameters do not depend on the number of symbols or the window; the layers after
it see (symbols + 1) x symbol_dim inputs instead of symbols x rows x window. Swapping two symbols
in the observation swaps their blocks of the output and leaves the context unchanged.

``LeanRolloutBuffer`` is SB3's ``RolloutBuffer`` handing minibatches to torch without a second
copy: SB3 copies every minibatch twice (fancy indexing, then ``torch.tensor``), which costs more
than the whole policy step once observations are a few thousand values wide.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

EXTRACTORS = ("flat", "shared_symbol")


class ObservationLayoutError(ValueError):
    """The observation space does not split into [symbols, rows, window]."""


def observation_layout(observation_space: spaces.Space, n_symbols: int, window: int
                       ) -> tuple[int, int, int]:
    """(symbols, rows, window) of a flat or [symbols, rows, window] Box observation."""
    shape = tuple(getattr(observation_space, "shape", None) or ())
    if not isinstance(observation_space, spaces.Box) or not shape:
        raise ObservationLayoutError(
            f"SharedSymbolExtractor needs a Box observation, got {observation_space!r}")
    if n_symbols < 1 or window < 1:
        raise ObservationLayoutError(
            f"n_symbols ({n_symbols}) and window ({window}) must be >= 1")
    if len(shape) == 3:
        if (shape[0], shape[2]) != (n_symbols, window):
            raise ObservationLayoutError(
                f"observation shape {shape} is not [symbols={n_symbols}, rows, window={window}]")
        return shape
    size = math.prod(shape)
    if len(shape) != 1 or size % (n_symbols * window):
        raise ObservationLayoutError(
            f"observation shape {shape} does not split into {n_symbols} symbols x rows x "
            f"window {window}")
    return n_symbols, size // (n_symbols * window), window


class SharedSymbolExtractor(BaseFeaturesExtractor):
    """Temporal pooling (last, mean) per symbol and row, then one encoder shared by all symbols.

    ``n_symbols`` and ``window`` give the observation's layout (the env's ``market.n_symbols``
    and ``env.window_size``); the number of rows follows from the observation size.
    """

    def __init__(self, observation_space: spaces.Box, n_symbols: int, window: int,
                 symbol_dim: int = 16) -> None:
        symbols, rows, window = observation_layout(observation_space, n_symbols, window)
        if symbol_dim < 1:
            raise ValueError(f"symbol_dim must be >= 1, got {symbol_dim}")
        super().__init__(observation_space, (symbols + 1) * symbol_dim)
        self.n_symbols, self.n_rows, self.window = symbols, rows, window
        self.symbol_dim = symbol_dim
        self.encoder = nn.Sequential(nn.Linear(2 * rows, symbol_dim), nn.ReLU())
        # the window mean as a matrix-vector product: about twice as fast as Tensor.mean over a
        # short last axis on the CPU
        self.register_buffer("_mean_weights", torch.full((window,), 1.0 / window),
                             persistent=False)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        batch, symbols, rows = observations.shape[0], self.n_symbols, self.n_rows
        series = observations.reshape(batch * symbols * rows, self.window)
        last = series[:, -1].reshape(batch, symbols, rows)
        mean = torch.mv(series, self._mean_weights).reshape(batch, symbols, rows)
        per_symbol = self.encoder(torch.cat([last, mean], dim=-1))  # [B, S, D]
        return torch.cat([per_symbol.reshape(batch, -1), per_symbol.mean(dim=1)], dim=1)


def extractor_policy_kwargs(name: str, *, n_symbols: int, window: int, symbol_dim: int
                            ) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` entries selecting extractor ``name`` ("flat": SB3's default)."""
    if name == "flat":
        return {}
    if name == "shared_symbol":
        return {"features_extractor_class": SharedSymbolExtractor,
                "features_extractor_kwargs": {"n_symbols": int(n_symbols),
                                              "window": int(window),
                                              "symbol_dim": int(symbol_dim)}}
    raise ValueError(f"unknown policy extractor {name!r}; expected one of {EXTRACTORS}")


class LeanRolloutBuffer(RolloutBuffer):
    """``RolloutBuffer`` whose minibatches reach torch without a second copy.

    ``_get_samples`` already copies every minibatch out of the buffer (fancy indexing), so the
    arrays it converts are its own: ``torch.as_tensor`` shares them instead of copying them again
    (on the CPU). The values are the same, so training is unchanged.
    """

    def to_torch(self, array: np.ndarray, copy: bool = True) -> torch.Tensor:
        return torch.as_tensor(array, device=self.device)
