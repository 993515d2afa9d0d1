/**
 * The BFF's HTTP contract, as the dashboard uses it: generated from the BFF's OpenAPI spec.
 *
 * `python scripts/export_openapi.py` writes ../bff/openapi.json from the FastAPI app (a test fails when
 * it is stale), and `npm run gen:api` turns it into src/api/schema.d.ts. Only aliases live here, so a
 * change to the BFF's models shows up as a type error in the dashboard.
 */
import type { components } from "./schema";

type Schemas = components["schemas"];

export type PipelineEvent = Schemas["Event"];
export type EventStatus = PipelineEvent["status"];
export type EventsResponse = Schemas["EventList"];
export type HealthResponse = Schemas["Health"];
export type CommitList = Schemas["CommitList"];
export type Commit = Schemas["Commit"];
export type Stats = Schemas["Stats"];
export type StatsBucket = Schemas["StatsBucket"];
export type StatsBucketSize = Stats["bucket"];
export type Maintenance = Schemas["Maintenance"];
export type TimelineAction = Schemas["TimelineAction"];
export type DeadLetterList = Schemas["DeadLetterList"];
export type DeadLetter = Schemas["DeadLetter"];
export type EventAtFailure = Schemas["EventAtFailure"];
export type RowChange = Schemas["RowChange"];
export type Journey = Schemas["Journey"];
export type JourneyStage = Schemas["JourneyStage"];
export type JourneyStep = Schemas["JourneyStep"];
export type StreamMessage = Schemas["StreamMessage"];
/** The live path: a state read from the bus that no commit holds yet (commitTime null, pending true). */
export type PendingEvent = Schemas["PendingEvent"];
export type StreamPendingMessage = Schemas["StreamPendingMessage"];
/** A row of the live timeline: committed, or pending until the commit that holds it arrives. */
export type TimelineEvent = PipelineEvent | PendingEvent;
export type ErrorBody = Schemas["ErrorBody"];
/** Alerts (GET /api/alerts) and their changes on the stream (SSE `alert` events). */
export type Alert = Schemas["Alert"];
export type AlertList = Schemas["AlertList"];
export type StreamAlertMessage = Schemas["StreamAlertMessage"];

export const EVENT_STATUSES: readonly EventStatus[] = ["STARTED", "RUNNING", "COMPLETED", "FAILED", "RETRYING"];
