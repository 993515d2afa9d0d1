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

export const EVENT_STATUSES: readonly EventStatus[] = ["STARTED", "RUNNING", "COMPLETED", "FAILED", "RETRYING"];
