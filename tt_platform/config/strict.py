"""The base of every run-config section: unknown keys refused, values frozen, no NaN or inf."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
