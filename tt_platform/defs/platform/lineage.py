"""The IO manager of the lineage edges: a handle goes into the materialization's metadata and
comes back out of exactly that materialization for the downstream asset."""

from __future__ import annotations

import dagster as dg

from tt_platform.pipeline.handles import HANDLE_TYPES

HANDLE_KEY = "handle"
HANDLE_TYPE_KEY = "handle_type"


def handle_metadata(handle: object) -> dict[str, object]:
    return {HANDLE_KEY: dg.MetadataValue.json(handle.to_dict()), HANDLE_TYPE_KEY: type(handle).__name__}


def handle_from_metadata(asset_key: dg.AssetKey, metadata: dict) -> object:
    try:
        payload, kind = metadata[HANDLE_KEY].value, metadata[HANDLE_TYPE_KEY].value
        return HANDLE_TYPES[kind].from_dict(payload)
    except KeyError as missing:
        raise dg.Failure(
            f"the materialization of {asset_key.to_user_string()} carries no {missing} metadata; "
            f"materialize {asset_key.to_user_string()} again"
        ) from None


class LineageIOManager(dg.ConfigurableIOManager):
    """Stores nothing itself: handles point into the platform's store."""

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        context.add_output_metadata(handle_metadata(obj))

    def load_input(self, context: dg.InputContext) -> object:
        asset_key = context.asset_key
        event = None
        upstream = context.upstream_output
        run_id = getattr(upstream, "_run_id", None) if upstream is not None else None
        if run_id:
            # the upstream ran in this run (or the run this one re-executes): take its event
            for record in context.instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
                materialization = record.asset_materialization
                if materialization is not None and materialization.asset_key == asset_key:
                    event = materialization
        if event is None:
            latest = context.instance.get_latest_materialization_event(asset_key)
            event = latest.asset_materialization if latest is not None else None
        if event is None:
            raise dg.Failure(f"{asset_key.to_user_string()} was never materialized; materialize it first")
        return handle_from_metadata(asset_key, dict(event.metadata))
