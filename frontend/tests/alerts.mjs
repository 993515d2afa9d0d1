/**
 * Browser steps for the open-alerts strip (obs_platform_tests/test_dashboard_alerts.py): real headless Chromium
 * (/usr/bin/chromium) through playwright-core. Prints JSON lines; reads commands on stdin.
 *
 *   node tests/alerts.mjs strip '{"url": ..., "where": "orders / load"}'
 *     {"ready": {"items": [...]}} once the page follows the stream; {"shown": {...}} when an alert for `where`
 *     is in the strip (as the user sees it: text, links); then, on the stdin line "links", opens both links
 *     in a second tab, then the dashboard afresh, and prints {"links": {...}} (what each page shows); then {"result": {...}} once the
 *     alert has left the strip, in the same document, and {"pageErrors": [...]}.
 */
import { createInterface } from "node:readline";
import { args, runScenario, say, TIMEOUT } from "./harness.mjs";
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const items = (page) => page.$$eval("#alert-list li.alert-item", (els) => els.map((li) => ({
  id: li.dataset.alertId, rule: li.dataset.rule,
  severity: li.querySelector(".sev")?.textContent?.trim(),
  where: li.querySelector(".alert-where")?.textContent?.trim(),
  summary: li.querySelector(".alert-summary")?.textContent ?? "",
  times: li.querySelector(".alert-times")?.textContent?.trim() ?? null,
  atFailure: li.querySelector("a.alert-at-failure")?.getAttribute("href") ?? null,
  journey: li.querySelector("a.alert-journey")?.getAttribute("href") ?? null,
  visible: li.getBoundingClientRect().height > 0,
  imgs: li.querySelectorAll("img, script").length,
})));

const count = (page) => page.locator('[data-testid="open-alerts"]').textContent().then((t) => t?.trim());

async function strip(page, context) {
  await page.goto(args.url, { waitUntil: "load" });
  await page.waitForSelector('[data-live-state="live"]', { timeout: TIMEOUT });
  await page.evaluate(() => (window.__sameDocument = true));
  say({ ready: { items: await items(page), count: await count(page) } });
  const started = Date.now();
  await page.waitForFunction((where) => [...document.querySelectorAll("#alert-list .alert-where")]
    .some((e) => e.textContent.trim() === where), args.where, { timeout: args.timeoutMs ?? 60_000, polling: 100 });
  const shown = (await items(page)).find((i) => i.where === args.where);
  say({ shown: { ...shown, count: await count(page), afterMs: Date.now() - started, at: Date.now() } });

  const command = await lines.next();
  if (command.value?.trim() !== "links") throw new Error(`expected "links", got ${JSON.stringify(command.value)}`);
  const tab = await context.newPage();
  const atFailure = await tab.goto(new URL(shown.atFailure, args.url).href, { waitUntil: "load" });
  const failurePage = {
    status: atFailure.status(), url: tab.url(), title: (await tab.locator("h1").first().textContent())?.trim(),
    error: await tab.$eval('[data-testid="failure-error"]', (e) => e.textContent.trim()).catch(() => null),
  };
  const journey = await tab.goto(new URL(shown.journey, args.url).href, { waitUntil: "load" });
  const journeyPage = {
    status: journey.status(), url: tab.url(), title: (await tab.locator("h1").first().textContent())?.trim(),
    stages: await tab.$$eval("ol.stages li.stage", (els) => els.map((e) => ({ stage: e.dataset.stage, status: e.dataset.status }))),
  };
  // a fresh load while the alert is open: the strip as the server renders it (and the page's state carries it)
  await tab.goto(args.url, { waitUntil: "load" });
  await tab.waitForSelector('[data-live-state="live"]', { timeout: TIMEOUT });
  const rendered = { items: await items(tab), count: await count(tab), pwned: await tab.evaluate(() => window.__pwned ?? null) };
  await tab.close();
  say({ links: { atFailure: failurePage, journey: journeyPage, rendered } });

  await page.waitForFunction((id) => !document.querySelector(`#alert-list [data-alert-id="${id}"]`), shown.id,
    { timeout: args.timeoutMs ?? 60_000, polling: 100 });
  return {
    gone: true, at: Date.now(), items: await items(page), count: await count(page),
    empty: await page.$eval("#alert-empty", (e) => !e.hidden),
    sameDocument: await page.evaluate(() => window.__sameDocument === true),
    pwned: await page.evaluate(() => window.__pwned ?? null),
  };
}

const SCENARIOS = { strip };

await runScenario(SCENARIOS, { exit: true });  // stdin stays open
