/**
 * Production server: node:http + Qwik City's Node middleware. Built to server/entry.node-server.js
 * by `npm run build`; serves the client build in dist/ and renders pages per request.
 *
 * Environment (read when the server starts / per request, never at build time):
 *   OBS_DASHBOARD_HOST  interface to bind   (default 127.0.0.1)
 *   OBS_DASHBOARD_PORT  port                (default 3001)
 *   OBS_BFF_URL         BFF as this server reaches it          (default http://127.0.0.1:8080)
 *   OBS_BFF_PUBLIC_URL  BFF as the operator's browser reaches it (default OBS_BFF_URL)
 *   OBS_DAGSTER_URL     Dagster webserver, linked from the page (default http://127.0.0.1:3000)
 *   OBS_BFF_TOKEN       the BFF's bearer token, when its auth is on: pages send it server-side, and the
 *                       browser reaches the BFF through this server's /bff proxy (see bff-proxy.ts)
 *
 * Responses are compressed (br or gzip, as the browser accepts) when their type is compressible: HTML,
 * JS, CSS, JSON, SVG. Never text/event-stream (the /bff proxy streams the BFF's SSE through: a compressor
 * would hold it back until a buffer fills).
 */
import { createQwikCity } from "@builder.io/qwik-city/middleware/node";
import compression from "compression";
import qwikCityPlan from "@qwik-city-plan";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { constants as zlibConstants } from "node:zlib";
import render from "./entry.ssr";
import { proxy, proxyConfig, sessionCookie } from "./bff-proxy";

const HOST = process.env.OBS_DASHBOARD_HOST?.trim() || "127.0.0.1";
const PORT = parsePort(process.env.OBS_DASHBOARD_PORT, 3001);
const SHUTDOWN_GRACE_MS = 5000;
const PROXY = proxyConfig(process.env);

/** Content-hashed build output: cache forever. Anything else in dist/ (favicon, robots): briefly. */
const IMMUTABLE = "public, max-age=31536000, immutable";
const SHORT = "public, max-age=300";

function parsePort(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`[dashboard] invalid OBS_DASHBOARD_PORT=${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return port;
}

const { router, notFound, staticFile } = createQwikCity({
  render,
  qwikCityPlan,
  // this file is server/entry.node-server.js; the client build is ../dist
  static: { root: fileURLToPath(new URL("../dist", import.meta.url)) },
});

const COMPRESSIBLE = /^(text\/(html|css|javascript|plain)|application\/(javascript|json|manifest\+json)|image\/svg\+xml)\b/;

/** Compress what is worth it; never an event stream (it would be held back until a buffer fills). */
export function shouldCompress(contentType: string | number | string[] | undefined): boolean {
  const type = String(contentType ?? "").toLowerCase();
  return !type.startsWith("text/event-stream") && COMPRESSIBLE.test(type);
}

const compress = compression({
  threshold: 1024,
  filter: (_req, res) => shouldCompress(res.getHeader("Content-Type")),
  // brotli at a moderate level: pages are rendered per request, so compression time is on the critical path
  brotli: { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } },
});

function fail(res: ServerResponse, status: number, message: string) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = status;
  res.setHeader("Content-Type", "text/plain; charset=utf-8");
  res.setHeader("Cache-Control", "no-store");
  res.end(message);
}

function handle(req: IncomingMessage, res: ServerResponse) {
  compress(req as never, res as never, () => serve(req, res));
}

/** Pages stream (the part below the timeline comes later): push each chunk through the compressor at once. */
function flushEachWrite(res: ServerResponse) {
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const flush = (res as ServerResponse & { flush?: () => void }).flush;
  if (!flush) return;
  res.write = ((...args: unknown[]) => {
    const ok = write(...args);
    flush.call(res);
    return ok;
  }) as ServerResponse["write"];
}

function serve(req: IncomingMessage, res: ServerResponse) {
  if (PROXY && proxy(PROXY, req, res)) return;
  const pathname = (req.url ?? "/").split("?", 1)[0];
  const hashed = pathname.startsWith("/build/") || pathname.startsWith("/assets/");
  // staticFile() serves it if it is a known static path; otherwise it calls next() untouched
  res.setHeader("Cache-Control", hashed ? IMMUTABLE : SHORT);
  staticFile(req, res, (staticErr?: NodeJS.ErrnoException) => {
    res.removeHeader("Cache-Control");
    if (staticErr) {
      const missing = staticErr.code === "ENOENT" || staticErr.code === "EISDIR";
      if (!missing) console.error("[dashboard] static file error", staticErr);
      fail(res, missing ? 404 : 500, missing ? "Not Found" : "Internal Server Error");
      return;
    }
    flushEachWrite(res);
    if (PROXY) res.setHeader("Set-Cookie", sessionCookie(PROXY)); // the browser's pass to the /bff proxy
    router(req, res, (routeErr?: unknown) => {
      if (routeErr) {
        fail(res, 500, "Internal Server Error");
        return;
      }
      notFound(req, res, () => fail(res, 404, "Not Found"));
    });
  });
}

const server = createServer(handle);

server.on("error", (err) => {
  console.error(`[dashboard] cannot listen on ${HOST}:${PORT}:`, err.message);
  process.exit(1);
});

server.listen(PORT, HOST, () => {
  const addr = server.address();
  const where = typeof addr === "object" && addr ? `${addr.address}:${addr.port}` : `${HOST}:${PORT}`;
  console.log(`[dashboard] listening on http://${where}/`);
});

let closing = false;
function shutdown(signal: NodeJS.Signals) {
  if (closing) return;
  closing = true;
  console.log(`[dashboard] ${signal}: shutting down`);
  server.close((err) => process.exit(err ? 1 : 0));
  server.closeIdleConnections();
  // requests still running after the grace period are cut off
  setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS).unref();
}
process.once("SIGTERM", shutdown);
process.once("SIGINT", shutdown);
