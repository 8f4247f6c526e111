"""Systems layer: composes data sources, the store, features, the environment and training into
the steps that the Dagster assets and the ``tt`` CLI run. No Dagster imports here."""
