/**
 * bench/dashboard's browser half: cold loads of pages in Debian's headless Chromium (playwright-core from
 * frontend/node_modules), one fresh context per load, at each CPU throttling rate.
 *
 *   node bench/dashboard_browser.mjs '<json config>'      (bench/dashboard.py builds the config)
 *
 * config: { runs, rates: [1, 4], viewport: {width, height},
 *           targets: [{ name, url, click: "<css of the control>", effect: "<css that matches once handled>" }] }
 *
 * Per load: first contentful paint; first click handled (from DOMContentLoaded a real mouse click on the
 * control every 50 ms until a MutationObserver sees `effect` match; the time is performance.now() at that
 * mutation, i.e. since navigation start); JS before interaction (every script V8 compiled until then: raw,
 * gzip -6 and executed bytes from block coverage); bytes on the wire (CDP encodedDataLength) until the
 * click was handled and after the page settled; total blocking time until the click (long tasks - 50 ms).
 * Prints one JSON document on stdout.
 */
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";

const require = createRequire(new URL("../frontend/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const CLICK_EVERY_MS = 50;
const LOAD_TIMEOUT_MS = 30_000;
const SETTLE_MS = 1500;
const RENDERER_START_MS = 300;

const config = JSON.parse(process.argv[2]);

/** In the page, before anything else: note long tasks; from DOMContentLoaded, watch for the effect. */
function initScript(effect) {
  window.__longTasks = [];
  // when the renderer first dispatched a click (input delay = this - the click's send time)
  addEventListener("click", () => { window.__clickSeen ??= performance.now(); }, { capture: true });
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
    }).observe({ type: "longtask", buffered: true });
  } catch {}
  document.addEventListener("DOMContentLoaded", () => {
    const done = () => {
      if (window.__fx === undefined && document.querySelector(effect)) {
        window.__fx = performance.now();
        window.__benchEffect(window.__fx);
        return true;
      }
      return false;
    };
    if (done()) return;
    const mo = new MutationObserver(() => done() && mo.disconnect());
    mo.observe(document.documentElement, { subtree: true, childList: true, attributes: true });
  });
}

/** Bytes of `source` that ran: V8 block coverage, outer ranges first, inner ranges override. */
function executedBytes(entry) {
  const used = new Uint8Array(entry.source.length);
  const ranges = entry.functions.flatMap((f) => f.ranges);
  ranges.sort((a, b) => (b.endOffset - b.startOffset) - (a.endOffset - a.startOffset));
  for (const r of ranges) used.fill(r.count > 0 ? 1 : 0, r.startOffset, r.endOffset);
  let n = 0;
  for (const u of used) n += u;
  return n;
}

function median(xs) {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

async function controlPoint(browser, target) {
  const context = await browser.newContext({ viewport: config.viewport });
  const page = await context.newPage();
  await page.goto(target.url, { waitUntil: "load" });
  const box = await page.locator(target.click).first().boundingBox({ timeout: LOAD_TIMEOUT_MS });
  await context.close();
  if (!box) throw new Error(`${target.name}: ${target.click} not found`);
  return { x: Math.round(box.x + Math.min(box.width / 2, 40)), y: Math.round(box.y + box.height / 2) };
}

async function coldLoad(browser, target, point, rate) {
  const context = await browser.newContext({ viewport: config.viewport });
  const page = await context.newPage();
  // the tab's renderer process starts before the measured navigation, so its start-up (CPU the server
  // shares on this 2-core machine) is not billed to the page's server time; the cache is still cold
  await page.goto("about:blank");
  await page.waitForTimeout(RENDERER_START_MS);
  const cdp = await context.newCDPSession(page);
  await cdp.send("Emulation.setCPUThrottlingRate", { rate });
  await cdp.send("Network.enable");
  const types = new Map();
  const wire = { all: 0, byType: {} };
  let wireAtClick = null;
  cdp.on("Network.responseReceived", (e) => types.set(e.requestId, e.type));
  cdp.on("Network.loadingFinished", (e) => {
    const type = types.get(e.requestId) ?? "Other";
    wire.all += e.encodedDataLength;
    wire.byType[type] = (wire.byType[type] ?? 0) + e.encodedDataLength;
  });
  let resolveFx;
  const fx = new Promise((r) => (resolveFx = r));
  await page.exposeFunction("__benchEffect", (t) => resolveFx(t));
  if (target.effect) await page.addInitScript(initScript, target.effect);
  else await page.addInitScript(() => { window.__longTasks = []; });
  await page.coverage.startJSCoverage({ resetOnNavigation: false, reportAnonymousScripts: true });

  let clicking = false;
  let clicks = 0;
  if (!target.effect) page.once("load", () => resolveFx(null)); // layout-only variant: no control to click
  page.once("domcontentloaded", () => {
    if (!target.effect) return;
    clicking = true;
    const tick = () => {
      if (!clicking) return;
      clicks++;
      // not awaited: input queues in the renderer like a user's clicks would
      cdp.send("Input.dispatchMouseEvent", { type: "mousePressed", x: point.x, y: point.y, button: "left", clickCount: 1 })
        .then(() => cdp.send("Input.dispatchMouseEvent", { type: "mouseReleased", x: point.x, y: point.y, button: "left", clickCount: 1 }))
        .catch(() => {});
      setTimeout(tick, CLICK_EVERY_MS);
    };
    tick();
  });
  const navigation = page.goto(target.url, { waitUntil: "domcontentloaded", timeout: LOAD_TIMEOUT_MS });
  let firstClick;
  try {
    firstClick = await Promise.race([fx, new Promise((_, reject) => setTimeout(() => reject(new Error("no effect")), LOAD_TIMEOUT_MS))]);
  } finally {
    clicking = false;
  }
  await navigation;
  wireAtClick = wire.all;
  const coverage = await page.coverage.stopJSCoverage();
  const js = { scripts: coverage.length, rawBytes: 0, gzipBytes: 0, executedBytes: 0 };
  for (const entry of coverage) {
    if (typeof entry.source !== "string") continue;
    js.rawBytes += entry.source.length;
    js.gzipBytes += gzipSync(entry.source, { level: 6 }).length;
    js.executedBytes += executedBytes(entry);
  }
  await page.waitForLoadState("load");
  await page.waitForTimeout(SETTLE_MS);
  const timing = await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    return {
      fcp: fcp ? fcp.startTime : null, ttfb: nav.responseStart, requestStart: nav.requestStart, dcl: nav.domContentLoadedEventEnd,
      load: nav.loadEventEnd, longTasks: window.__longTasks, clickSeen: window.__clickSeen ?? null,
      serverTiming: Object.fromEntries((nav.serverTiming ?? []).map((t) => [t.name, t.duration])), qwikJson: document.querySelector('script[type="qwik/json"]')?.textContent.length ?? null,
      domNodes: document.getElementsByTagName("*").length,
    };
  });
  const tbt = timing.longTasks.filter(([start]) => start < (firstClick ?? timing.load) && start >= (timing.fcp ?? 0))
    .reduce((sum, [, d]) => sum + Math.max(0, d - 50), 0);
  await context.close();
  return {
    fcpMs: timing.fcp, firstClickMs: firstClick, clicks, ttfbMs: timing.ttfb, dclMs: timing.dcl, loadMs: timing.load,
    requestStartMs: timing.requestStart, tbtMs: tbt, firstClickSeenMs: timing.clickSeen, serverTiming: timing.serverTiming, js, wireBytesAtClick: wireAtClick, wireBytesSettled: wire.all, wireByType: wire.byType,
    qwikJsonChars: timing.qwikJson, domNodes: timing.domNodes,
  };
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: FLAGS, headless: true });
const out = { runs: config.runs, rates: config.rates, viewport: config.viewport, targets: {} };
try {
  const points = {};
  for (const t of config.targets) points[t.name] = t.effect ? await controlPoint(browser, t) : null;
  for (const rate of config.rates) {
    for (const t of config.targets) await coldLoad(browser, t, points[t.name], rate); // warm-up, not counted
    const samples = Object.fromEntries(config.targets.map((t) => [t.name, []]));
    for (let i = 0; i < config.runs; i++) {
      for (const t of config.targets) {
        samples[t.name].push(await coldLoad(browser, t, points[t.name], rate));
        process.stderr.write(".");
      }
    }
    for (const t of config.targets) {
      const s = samples[t.name];
      (out.targets[t.name] ??= { url: t.url, click: t.click, point: points[t.name], byRate: {} }).byRate[rate] = {
        median: {
          fcpMs: median(s.map((x) => x.fcpMs)), firstClickMs: median(s.map((x) => x.firstClickMs)),
          firstClickSeenMs: median(s.map((x) => x.firstClickSeenMs)), serverBffMs: median(s.map((x) => x.serverTiming?.bff)),
          ttfbMs: median(s.map((x) => x.ttfbMs)), dclMs: median(s.map((x) => x.dclMs)), tbtMs: median(s.map((x) => x.tbtMs)),
          jsGzipBytes: median(s.map((x) => x.js.gzipBytes)), jsRawBytes: median(s.map((x) => x.js.rawBytes)),
          jsExecutedBytes: median(s.map((x) => x.js.executedBytes)),
          wireBytesAtClick: median(s.map((x) => x.wireBytesAtClick)), wireBytesSettled: median(s.map((x) => x.wireBytesSettled)),
          qwikJsonChars: median(s.map((x) => x.qwikJsonChars)), domNodes: median(s.map((x) => x.domNodes)),
        },
        samples: s,
      };
    }
  }
} finally {
  await browser.close();
  process.stderr.write("\n");
}
process.stdout.write(JSON.stringify(out));
