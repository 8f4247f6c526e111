"""Dagster config classes generated from the run config's pydantic sections.

Dagster's Pythonic config takes plain types (str, int, float, bool, lists, Optional, Literal,
nested ``dg.Config``). ``dagster_config_class`` mirrors a pydantic model field by field with such
types, the same defaults and descriptions, so the Launchpad scaffolds every key with its
default. Bounds and cross-field rules stay in the pydantic model alone: the values are
validated there when the run config is built from the Dagster config.

Type mapping: dates and paths become ISO / path strings, enums a Literal of their values, nested
models nested config classes; the bounds are appended to the description, for reading only.
"""

from __future__ import annotations

import types
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import dagster as dg
from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

_BOUNDS = ((annotated_types.Ge, ">="), (annotated_types.Gt, ">"), (annotated_types.Le, "<="),
           (annotated_types.Lt, "<"))


def dagster_config_class(model: type[BaseModel], *, base: type[BaseModel] = dg.Config,
                         name: str | None = None) -> type[BaseModel]:
    """A ``base`` subclass (``dg.Config`` or ``dg.ConfigurableResource``) with ``model``'s fields."""
    fields: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = dagster_config_class(annotation, name=f"{annotation.__name__}Fields")
            fields[key] = (section, Field(default=section(), description=_description(info, annotation)))
        else:
            default = info.get_default(call_default_factory=True)
            if default is PydanticUndefined:
                fields[key] = (_plain_type(annotation), Field(description=_description(info)))
            else:
                fields[key] = (_nullable(_plain_type(annotation)),
                               Field(default=to_jsonable_python(default), description=_description(info)))
    created = create_model(name or f"{model.__name__}Fields", __base__=base, **fields)
    created.__doc__ = model.__doc__
    return created


def config_values(config: Any, model: type[BaseModel]) -> dict[str, Any]:
    """The values of a ``dagster_config_class(model)`` instance as a plain mapping for ``model``."""
    values = {}
    for key, info in model.model_fields.items():
        value = getattr(config, key)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            value = config_values(value, annotation)
        elif isinstance(value, BaseModel):  # an optional nested section that was given
            value = config_values(value, _model_of(annotation))
        values[key] = value
    return values


def _model_of(annotation: Any) -> type[BaseModel]:
    """The pydantic model inside ``Model | None``."""
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    raise TypeError(f"no model in {annotation}")


def _nullable(plain: Any) -> Any:
    """Dagster's schema takes null for every key that has a default (a Literal aside): the config
    class takes it too and hands it on, so that the model's validation names the key, instead of
    the resource failing to build with a pydantic error."""
    return plain if get_origin(plain) is Literal else plain | None


def _plain_type(annotation: Any) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _plain_type(args[0])
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"unsupported union {annotation}")
        plain = _plain_type(inner[0])
        # Dagster takes a Literal only as a field's own type: an optional one is a string
        return (str if get_origin(plain) is Literal else plain) | None
    if origin is Literal:
        return annotation
    if origin is list:
        return list[_plain_type(args[0])]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return Literal[tuple(member.value for member in annotation)]
    if annotation in (date, datetime, Path):
        return str
    if annotation in (str, int, float, bool):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return dagster_config_class(annotation, name=f"{annotation.__name__}Fields")
    raise TypeError(f"no Dagster config type for {annotation}")


def _description(info: FieldInfo, model: type[BaseModel] | None = None) -> str | None:
    text = info.description or (model.__doc__.strip() if model is not None and model.__doc__ else None)
    bounds = [f"{symbol} {getattr(m, type(m).__name__.lower())}"
              for m in info.metadata for kind, symbol in _BOUNDS if isinstance(m, kind)]
    if bounds:
        text = f"{text} ({', '.join(bounds)})" if text else ", ".join(bounds)
    return text
