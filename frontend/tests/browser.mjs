/**
 * Browser steps for the dashboard's tests (obs_platform_tests/test_dashboard_browser.py drives them): real
 * headless Chromium (Debian's /usr/bin/chromium) through playwright-core. Each call does what a user does
 * in one scenario and prints, as JSON lines, what the user then sees; the Python test asserts on it.
 *
 *   node tests/browser.mjs <scenario> '<json args>'
 *
 * Scenarios: view (load a URL: rows, header, panels, serialized state), details (click a row),
 * live (load, say "ready" once live, then wait for an event to appear without reload), time-travel (pick
 * a commit in the time-travel control), journey (click a row's batch), at-failure (click a FAILED row's
 * "at failure").
 */
import { args, runScenario, say, TIMEOUT } from "./harness.mjs";

/** The timeline's rows as the user sees them: id, status and the status badge's colour. */
async function rows(page) {
  return page.$$eval("#tl-rows .tl-row", (els) => els.map((r) => {
    const badge = r.querySelector(".badge");
    return {
      id: r.dataset.eventId, status: badge?.textContent?.trim(),
      badgeColor: badge ? getComputedStyle(badge).backgroundColor : null,
      error: r.querySelector(".c-error")?.textContent ?? "",
      pipeline: r.querySelector(".c-pipeline")?.textContent ?? "",
      stage: r.querySelector(".c-stage")?.textContent ?? "",
      batch: r.querySelector(".c-corr")?.textContent ?? "",
      hasAtFailure: !!r.querySelector("a.at-failure"),
    };
  }));
}

const text = (page, sel) => page.locator(sel).first().textContent({ timeout: TIMEOUT }).then((t) => t?.trim() ?? "");
/** Text of an element that may be absent (no waiting): null when it is not on the page. */
const maybeText = (page, sel) => page.$eval(sel, (e) => e.textContent.trim()).catch(() => null);

async function view(page) {
  await page.goto(args.url, { waitUntil: "load" });
  const form = await page.$eval("#view", (f) => ({
    statuses: [...f.querySelectorAll('input[name="status"]:checked')].map((i) => i.value),
    pipeline: f.querySelector('input[name="pipeline"]').value,
    q: f.querySelector('input[name="q"]').value,
    asOf: f.querySelector('select[name="as_of"]').value,
  }));
  return {
    url: page.url(), rows: await rows(page), count: await text(page, '[data-testid="event-count"]'),
    latestCommit: await text(page, '[data-testid="latest-commit"]'), form,
    deadLetters: await maybeText(page, '[data-testid="dead-letter-count"]'),
    deadLetterReasons: await page.$$eval("#dead-letters tbody tr td:nth-child(2)", (els) => els.map((e) => e.textContent)),
    maintenance: await text(page, "#maintenance"),
    dagsterHref: await page.getAttribute('[data-testid="dagster-link"]', "href"),
    charts: await page.$$eval("#charts figure[data-metric], #charts .chart-live", (els) => els.map((e) => e.dataset.metric)),
    qwikJson: await page.$eval('script[type="qwik/json"]', (s) => s.textContent).catch(() => ""),
    banner: await maybeText(page, '[data-testid="time-travel-banner"]'),
    // set only if a script smuggled in through event data ran (the hostile-input test plants such payloads)
    pwned: await page.evaluate(() => window.__pwned ?? null),
    injected: await page.$$eval("#tl-rows img, #tl-rows script, #tl-rows svg", (els) => els.length),
  };
}

async function details(page) {
  await page.goto(args.url, { waitUntil: "load" });
  await page.locator(`#tl-rows [data-event-id="${args.eventId}"] .c-time`).click();
  await page.waitForSelector(`#event-detail[data-event-id="${args.eventId}"]`, { timeout: TIMEOUT });
  return { detail: await text(page, "#event-detail"), selected: await page.$$eval("#tl-rows .selected", (e) => e.map((r) => r.dataset.eventId)),
    pwned: await page.evaluate(() => window.__pwned ?? null) };
}

/** args.pages: [{url, state}] opened side by side (e.g. the stream and the polling fallback). */
async function live(first) {
  const pages = [first];
  for (let i = 1; i < args.pages.length; i++) pages.push(await first.context().newPage());
  for (const [i, p] of args.pages.entries()) {
    await pages[i].goto(p.url, { waitUntil: "load" });
    await pages[i].waitForSelector(`[data-live-state="${p.state}"]`, { timeout: TIMEOUT });
    await pages[i].evaluate(() => (window.__sameDocument = true));
  }
  say({ ready: true });
  const started = Date.now();
  return Promise.all(pages.map(async (page) => {
    await page.waitForSelector(`#tl-rows [data-event-id="${args.eventId}"]`, { timeout: args.timeoutMs ?? 90_000 });
    return {
      appearedAfterMs: Date.now() - started, sameDocument: await page.evaluate(() => window.__sameDocument === true),
      rows: await rows(page), liveState: await page.getAttribute("[data-live-state]", "data-live-state"),
      count: await text(page, '[data-testid="event-count"]'), latestCommit: await text(page, '[data-testid="latest-commit"]'),
    };
  }));
}

async function timeTravel(page) {
  await page.goto(args.url, { waitUntil: "load" });
  await Promise.all([
    page.waitForURL((u) => u.searchParams.get("as_of") === args.asOf, { timeout: TIMEOUT }),
    page.selectOption("#as-of", args.asOf),
  ]);
  await page.waitForLoadState("load");
  return { url: page.url(), rows: await rows(page), banner: await text(page, '[data-testid="time-travel-banner"]'),
    liveState: await page.getAttribute("[data-live-state]", "data-live-state") };
}

async function journey(page) {
  await page.goto(args.url, { waitUntil: "load" });
  await Promise.all([page.waitForURL(/\/journeys\//, { timeout: TIMEOUT }),
    page.locator(`#tl-rows [data-event-id="${args.eventId}"] .c-corr a`).click()]);
  return {
    url: page.url(), title: await text(page, "h1"),
    stages: await page.$$eval("ol.stages li.stage", (els) => els.map((e) => ({
      stage: e.dataset.stage, status: e.dataset.status, text: e.textContent.replace(/\s+/g, " ").trim() }))),
    steps: await page.$$eval("ol.stages li.step", (els) => els.map((e) => ({ kind: e.dataset.kind, text: e.textContent.trim() }))),
    pwned: await page.evaluate(() => window.__pwned ?? null),
  };
}

async function atFailure(page) {
  await page.goto(args.url, { waitUntil: "load" });
  await Promise.all([page.waitForURL(/\/at-failure\//, { timeout: TIMEOUT }),
    page.locator(`#tl-rows [data-event-id="${args.eventId}"] a.at-failure`).click()]);
  return {
    url: page.url(), title: await text(page, "h1"), error: await text(page, '[data-testid="failure-error"]'),
    failureCommit: await text(page, '[data-testid="failure-commit"]'), healthyCommit: await text(page, '[data-testid="healthy-commit"]'),
    changes: await page.$$eval('[data-testid="changes"] tbody tr', (els) => els.map((e) => ({
      id: e.dataset.eventId, change: e.dataset.change, text: e.textContent.replace(/\s+/g, " ").trim() }))),
    pipelineState: await page.$$eval('[data-testid="pipeline-state"] tbody tr', (els) => els.map((e) => ({ id: e.dataset.eventId, status: e.dataset.status }))),
    pwned: await page.evaluate(() => window.__pwned ?? null),
  };
}

const SCENARIOS = { view, details, live, "time-travel": timeTravel, journey, "at-failure": atFailure };

await runScenario(SCENARIOS);
