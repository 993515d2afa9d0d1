/**
 * What every browser script here shares: its arguments (`node tests/<script>.mjs <scenario> '<json args>'`),
 * JSON-line output, and the run of one named scenario in Debian's Chromium through playwright-core
 * (page errors reported beside the result).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { chromium } = require("playwright-core");

const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
export const TIMEOUT = 20_000;

export const [scenario, rawArgs] = process.argv.slice(2);
export const args = JSON.parse(rawArgs ?? "{}");
export const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

/** Run ``scenarios[scenario](page, context)`` on a fresh page and say its result (exit 2 on an unknown
 * name). ``exit``: end the process once the browser closed (a script still reading stdin would not). */
export async function runScenario(scenarios, { exit = false } = {}) {
  const run = scenarios[scenario];
  if (!run) {
    console.error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(", ")}`);
    process.exit(2);
  }
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: FLAGS, headless: true });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const result = await run(page, context);
    say({ result, pageErrors: errors });
  } finally {
    await browser.close();
    if (exit) process.exit(0);
  }
}
