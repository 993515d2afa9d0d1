"""Launchers that stand in for managed services on one machine (the ``local`` profile only).

Nothing in the production profile imports this package: in ``gcp`` the bus, the lake, Spark, the metastore
and Dagster's storage are managed services.
"""
