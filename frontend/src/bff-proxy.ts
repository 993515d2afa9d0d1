/**
 * The browser's way to the BFF when auth is on (OBS_BFF_TOKEN set): a same-origin proxy on this server.
 *
 * The token never leaves this server. A page served here sets an HttpOnly, SameSite=Strict cookie scoped to
 * /bff (an expiry and its HMAC, keyed from the token: it survives restarts, and changing the token revokes
 * it); the browser's live stream, its polling fallback, its chart refreshes and the alerts strip's re-reads
 * call /bff/api/..., and this proxy checks the cookie, adds `Authorization: Bearer <token>` and streams the
 * answer back (SSE included).
 * Only GET and only the routes the browser uses are forwarded. Nothing carries a secret in a URL, so no
 * access log can hold one.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest } from "node:https";

export const PROXY_PATH = "/bff";
export const COOKIE_NAME = "obs_bff";
const COOKIE_MAX_AGE_S = 12 * 3600;
/** What a browser of the dashboard reads from the BFF (everything else is read server-side). */
const FORWARDED = /^\/api\/(stream|events|events\/incremental|stats|alerts)$/;
const PASSED_BACK = ["content-type", "cache-control", "x-accel-buffering", "server-timing"];

export interface ProxyConfig {
  bffUrl: URL;
  token: string;
  key: Buffer;
}

export function proxyConfig(env: NodeJS.ProcessEnv): ProxyConfig | null {
  const token = env.OBS_BFF_TOKEN?.trim();
  if (!token) return null;
  const bffUrl = new URL((env.OBS_BFF_URL?.trim() || "http://127.0.0.1:8080").replace(/\/+$/, "") + "/");
  return { bffUrl, token, key: createHmac("sha256", token).update("obs-dashboard-session").digest() };
}

function sign(cfg: ProxyConfig, expiry: string): Buffer {
  return createHmac("sha256", cfg.key).update(expiry).digest();
}

/** The Set-Cookie value a page response carries. */
export function sessionCookie(cfg: ProxyConfig, nowMs = Date.now()): string {
  const expiry = String(Math.floor(nowMs / 1000) + COOKIE_MAX_AGE_S);
  const value = `${expiry}.${sign(cfg, expiry).toString("base64url")}`;
  return `${COOKIE_NAME}=${value}; HttpOnly; SameSite=Strict; Path=${PROXY_PATH}; Max-Age=${COOKIE_MAX_AGE_S}`;
}

export function validSession(cfg: ProxyConfig, cookieHeader: string | undefined, nowMs = Date.now()): boolean {
  const value = (cookieHeader ?? "").split(";").map((c) => c.trim())
    .find((c) => c.startsWith(`${COOKIE_NAME}=`))?.slice(COOKIE_NAME.length + 1);
  if (!value) return false;
  const [expiry, sig] = value.split(".", 2);
  if (!/^\d{1,12}$/.test(expiry ?? "") || !sig || Number(expiry) * 1000 < nowMs) return false;
  const offered = Buffer.from(sig, "base64url");
  const expected = sign(cfg, expiry);
  return offered.length === expected.length && timingSafeEqual(offered, expected);
}

function refuse(res: ServerResponse, status: number, detail: string) {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.setHeader("Cache-Control", "no-store");
  res.end(JSON.stringify({ detail }));
}

/** Handles /bff/... (true), or leaves the request to the pages (false). */
export function proxy(cfg: ProxyConfig, req: IncomingMessage, res: ServerResponse): boolean {
  const raw = req.url ?? "/";
  if (raw !== PROXY_PATH && !raw.startsWith(`${PROXY_PATH}/`)) return false;
  const [pathname, search = ""] = raw.slice(PROXY_PATH.length).split("?", 2);
  if (req.method !== "GET") {
    refuse(res, 405, "only GET is forwarded to the BFF");
  } else if (!validSession(cfg, req.headers.cookie)) {
    refuse(res, 401, "no dashboard session (or it expired): reload the page");
  } else if (!FORWARDED.test(pathname)) {
    refuse(res, 404, `${pathname} is not forwarded to the BFF`);
  } else {
    forward(cfg, `${pathname.slice(1)}${search ? `?${search}` : ""}`, req, res);
  }
  return true;
}

function forward(cfg: ProxyConfig, path: string, req: IncomingMessage, res: ServerResponse) {
  const target = new URL(path, cfg.bffUrl);
  const headers: Record<string, string> = { authorization: `Bearer ${cfg.token}`, accept: req.headers.accept ?? "*/*" };
  const lastEventId = req.headers["last-event-id"];
  if (typeof lastEventId === "string") headers["last-event-id"] = lastEventId;
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  const upstream = send(target, { method: "GET", headers }, (answer) => {
    res.statusCode = answer.statusCode ?? 502;
    for (const name of PASSED_BACK) {
      const value = answer.headers[name];
      if (value !== undefined) res.setHeader(name, value);
    }
    answer.pipe(res);
  });
  upstream.on("error", (err) => {
    if (res.headersSent) res.destroy();
    else refuse(res, 502, `BFF unreachable: ${err.message}`);
  });
  res.on("close", () => upstream.destroy()); // the browser went away: so does the BFF connection
  upstream.end();
}
