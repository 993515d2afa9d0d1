/**
 * Browser steps for the live path (obs_platform_tests/test_dashboard_live_path.py and bench/detect.py drive
 * them): real headless Chromium (/usr/bin/chromium) through playwright-core. Prints JSON lines.
 *
 *   node tests/live-path.mjs pending-then-committed '{"url": ..., "eventId": ...}'
 *     "ready" once the page follows the stream; then {"pending": {...}} when the row shows as pending, then
 *     {"committed": {...}} when it shows as committed; then {"result": ..., "pageErrors": [...]}.
 *   node tests/live-path.mjs watch '{"url": ..., "prefix": ..., "count": N}'
 *     "ready"; then, once `count` rows whose eventId starts with `prefix` were seen, {"result": {"seen":
 *     {eventId: epoch ms first on screen}}} (a MutationObserver notes each row as the page draws it).
 */
import { args, runScenario, say, TIMEOUT } from "./harness.mjs";

/** One row as the user sees it: status, whether it is marked pending, the commit cell's text, its look. */
function describe(page, eventId) {
  return page.$eval(`#tl-rows [data-event-id="${eventId}"]`, (r) => ({
    id: r.dataset.eventId, status: r.querySelector(".c-status .badge")?.textContent?.trim(),
    pending: r.dataset.pending === "true", classes: r.className,
    commit: r.querySelector(".c-commit")?.textContent?.trim(), error: r.querySelector(".c-error")?.textContent ?? "",
    fontStyle: getComputedStyle(r).fontStyle, edge: getComputedStyle(r.querySelector(".c-time")).borderLeftStyle,
    hasAtFailure: !!r.querySelector("a.at-failure"), top: [...r.parentElement.children].indexOf(r),
  }));
}

async function open(page) {
  await page.goto(args.url, { waitUntil: "load" });
  await page.waitForSelector('[data-live-state="live"]', { timeout: TIMEOUT });
  await page.evaluate(() => (window.__sameDocument = true));
}

async function pendingThenCommitted(page) {
  await open(page);
  say({ ready: true });
  const started = Date.now();
  const sel = `#tl-rows [data-event-id="${args.eventId}"]`;
  await page.waitForSelector(`${sel}[data-pending="true"]`, { timeout: args.timeoutMs ?? 60_000 });
  say({ pending: { ...(await describe(page, args.eventId)), afterMs: Date.now() - started, at: Date.now() } });
  await page.waitForSelector(`${sel}:not([data-pending])`, { timeout: args.timeoutMs ?? 90_000 });
  return {
    committed: await describe(page, args.eventId), at: Date.now(),
    sameDocument: await page.evaluate(() => window.__sameDocument === true),
    latestCommit: await page.locator('[data-testid="latest-commit"]').textContent(),
    pendingRows: await page.$$eval('#tl-rows [data-pending="true"]', (els) => els.map((e) => e.dataset.eventId)),
  };
}

async function watch(page) {
  await open(page);
  await page.evaluate((prefix) => {
    window.__seen = {};
    const note = (node) => {
      const id = node.dataset?.eventId;
      if (id && id.startsWith(prefix) && !(id in window.__seen)) window.__seen[id] = Date.now();
    };
    new MutationObserver((records) => {
      for (const r of records) for (const n of r.addedNodes) if (n.nodeType === 1) note(n);
    }).observe(document.getElementById("tl-rows"), { childList: true });
  }, args.prefix);
  say({ ready: true });
  await page.waitForFunction((count) => Object.keys(window.__seen).length >= count, args.count,
    { timeout: args.timeoutMs ?? 300_000, polling: 500 });
  return { seen: await page.evaluate(() => window.__seen) };
}

const SCENARIOS = { "pending-then-committed": pendingThenCommitted, watch };

await runScenario(SCENARIOS);
