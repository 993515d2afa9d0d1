"""OpenLineage RunEvents shaped like Airflow's provider and Spark's integration emit them, built with
openlineage-python's own models and serialised by its Serde (what its transports send)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    error_message_run,
    input_statistics_input_dataset,
    nominal_time_run,
    output_statistics_output_dataset,
    parent_run,
)
from openlineage.client.serde import Serde
from openlineage.client.uuid import generate_new_uuid

AIRFLOW = "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3"
SPARK = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"


def uuid7(at: datetime) -> str:
    return str(generate_new_uuid(at))


def parent(run_id: str, namespace: str, name: str, root: tuple[str, str, str] | None = None):
    root_facet = None
    if root:
        root_facet = parent_run.Root(run=parent_run.RootRun(runId=root[0]),
                                     job=parent_run.RootJob(namespace=root[1], name=root[2]))
    return parent_run.ParentRunFacet(run=parent_run.Run(runId=run_id),
                                     job=parent_run.Job(namespace=namespace, name=name), root=root_facet)


def event(state: RunState, at: datetime, run_id: str, namespace: str, name: str, producer: str = AIRFLOW,
          facets: dict | None = None, inputs: list | None = None, outputs: list | None = None) -> RunEvent:
    return RunEvent(eventType=state, eventTime=at.isoformat(), producer=producer,
                    run=Run(runId=run_id, facets=facets or {}), job=Job(namespace=namespace, name=name),
                    inputs=inputs or [], outputs=outputs or [])


def error(message: str, language: str = "python", trace: str | None = None):
    return error_message_run.ErrorMessageRunFacet(message=message, programmingLanguage=language, stackTrace=trace)


def read(namespace: str, name: str, rows: int | None = None) -> InputDataset:
    facets = {"inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(rowCount=rows)} \
        if rows is not None else {}
    return InputDataset(namespace=namespace, name=name, inputFacets=facets)


def write(namespace: str, name: str, rows: int | None = None) -> OutputDataset:
    facets = {"outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)} \
        if rows is not None else {}
    return OutputDataset(namespace=namespace, name=name, outputFacets=facets)


def as_json(ev: RunEvent) -> dict:
    return json.loads(Serde.to_json(ev))


@dataclass
class AirflowDagRun:
    """A DAG run `orders_daily` (namespace `airflow-prod`): extract COMPLETE, a Spark app under `transform`
    (app + one nested Spark job, RUNNING then COMPLETE), then `load` FAILs with an errorMessage facet, and
    the DAG run FAILs. Returns the events in the order the integrations send them."""

    t0: datetime
    dag: str = "orders_daily"
    namespace: str = "airflow-prod"
    ids: dict[str, str] = field(default_factory=dict)

    def events(self) -> list[RunEvent]:
        t, ns, dag = self.t0, self.namespace, self.dag
        dag_run = self.ids["dag"] = uuid7(t)
        nominal = {"nominalTime": nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=(t - timedelta(hours=1)).isoformat(), nominalEndTime=t.isoformat())}
        in_dag = {"parent": parent(dag_run, ns, dag, root=(dag_run, ns, dag)), **nominal}
        extract = self.ids["extract"] = uuid7(t + timedelta(seconds=1))
        transform = self.ids["transform"] = uuid7(t + timedelta(seconds=20))
        app = self.ids["spark_app"] = uuid7(t + timedelta(seconds=22))
        job = self.ids["spark_job"] = uuid7(t + timedelta(seconds=25))
        load = self.ids["load"] = uuid7(t + timedelta(seconds=60))
        under_task = {"parent": parent(transform, ns, f"{dag}.transform", root=(dag_run, ns, dag))}
        under_app = {"parent": parent(app, "spark-ns", "orders_etl", root=(dag_run, ns, dag))}
        s = timedelta(seconds=1)
        return [
            event(RunState.START, t, dag_run, ns, dag, facets=nominal),
            event(RunState.START, t + s, extract, ns, f"{dag}.extract", facets=in_dag,
                  inputs=[read("postgres://db:5432", "shop.public.orders")]),
            event(RunState.COMPLETE, t + 15 * s, extract, ns, f"{dag}.extract", facets=in_dag,
                  inputs=[read("postgres://db:5432", "shop.public.orders", 1200)],
                  outputs=[write("s3://lake", "raw/orders", 1200)]),
            event(RunState.START, t + 20 * s, transform, ns, f"{dag}.transform", facets=in_dag),
            event(RunState.START, t + 22 * s, app, "spark-ns", "orders_etl", SPARK, facets={
                "parent": parent(transform, ns, f"{dag}.transform", root=(dag_run, ns, dag))}),
            event(RunState.START, t + 25 * s, job, "spark-ns", "orders_etl.insert_into_orders_clean", SPARK,
                  facets=under_app, inputs=[read("s3://lake", "raw/orders")]),
            event(RunState.RUNNING, t + 30 * s, job, "spark-ns", "orders_etl.insert_into_orders_clean", SPARK,
                  facets=under_app, inputs=[read("s3://lake", "raw/orders", 1200)]),
            event(RunState.COMPLETE, t + 40 * s, job, "spark-ns", "orders_etl.insert_into_orders_clean", SPARK,
                  facets=under_app, inputs=[read("s3://lake", "raw/orders", 1200)],
                  outputs=[write("s3://lake", "clean/orders", 1188)]),
            event(RunState.COMPLETE, t + 41 * s, app, "spark-ns", "orders_etl", SPARK, facets=under_task),
            event(RunState.COMPLETE, t + 45 * s, transform, ns, f"{dag}.transform", facets=in_dag),
            event(RunState.START, t + 60 * s, load, ns, f"{dag}.load", facets=in_dag),
            event(RunState.FAIL, t + 75 * s, load, ns, f"{dag}.load", facets={
                **in_dag, "errorMessage": error("psycopg2.errors.DiskFull: could not extend file",
                                                trace="Traceback (most recent call last): ...")}),
            event(RunState.FAIL, t + 76 * s, dag_run, ns, dag, facets={
                **nominal, "errorMessage": error("task load failed")}),
        ]
