"""Thin Dagster edges over the platform's packages."""
