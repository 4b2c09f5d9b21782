// Every dashboard page at a desktop (1440 px) and a phone (390 px) width, and at 1440 px in
// the dark colour scheme: nothing wider than the window, and axe-core finds no serious or
// critical accessibility violation (contrast included). One screenshot per page type and
// pass is kept as the visual reference.
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import assert from "node:assert/strict";

const base = process.env.CXM_URL;
const shots = `${process.env.SHOTS ?? "target/e2e"}/pages`;
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const secret = process.env.SECRET_KEY;
const api = async (path) => (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${secret}` } })).json();

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

// pages with an id in the path take the first one the API lists
const customers = await api("/api/v1/customers?q=grace");
const tickets = await api("/api/v1/tickets");
const journeys = await api("/api/v1/journeys");
const experiments = await api("/api/v1/experiments");
const pages = [
  ["home", "/"], ["home-support", "/?view=support"], ["home-success", "/?view=success"], ["customers", "/customers"], ["accounts", "/accounts"], ["alerts", "/alerts"],
  ["voc", "/voc"], ["themes", "/themes"], ["responses", "/responses"], ["voc-30-days", "/voc?days=30"], ["surveys", "/surveys"], ["survey-builder", "/surveys/build"],
  ["journeys", "/journeys"], ["tickets", "/tickets"], ["reviews", "/reviews"], ["agents", "/agents"],
  ["decisions", "/decisions"], ["equity", "/equity"], ["experiments", "/experiments"], ["maturity", "/maturity"],
  ["workspace", "/settings/workspace"], ["data", "/settings/data"], ["quarantine", "/quarantine"],
  ["keys", "/settings/keys"], ["users", "/settings/users"], ["cluster", "/settings/cluster"], ["your-account", "/settings/account"],
  ["not-found", "/no-such-page"],
];
const first = (list, key) => (Array.isArray(list) ? list : list?.[key] ?? [])[0];
const customer = first(customers, "customers");
if (customer) pages.push(["customer", `/customers/${customer.id}`]);
pages.push(["account", "/accounts/umbrella"]);
const ticket = first(tickets, "tickets");
if (ticket) pages.push(["ticket", `/tickets/${ticket.id}`]);
const journey = first(journeys, "journeys");
if (journey) {
  pages.push(["journey", `/journeys/${journey.id ?? journey.journey_id}`]);
  pages.push(["journey-30-days", `/journeys/${journey.id ?? journey.journey_id}?days=30`]);
}
const experiment = first(experiments, "experiments");
if (experiment) pages.push(["experiment", `/experiments/${experiment.id}`]);

const failures = [];
const counts = {};
try {
  for (const [width, colorScheme] of [[1440, "light"], [390, "light"], [1440, "dark"]]) {
    const pass = colorScheme === "dark" ? `${width}-dark` : `${width}`;
    // axe is injected as a script of its own, which the pages' Content-Security-Policy refuses
    const context = await browser.newContext({ viewport: { width, height: 900 }, bypassCSP: true, colorScheme });
    const page = await context.newPage();
    await page.goto(`${base}/login`);
    await page.fill("#email", "owner@example.com");
    await page.fill("#password", "owner-password-1");
    await page.click("button[type=submit]");
    await page.waitForURL(`${base}/`);
    for (const [name, path] of pages) {
      const res = await page.goto(`${base}${path}`);
      const expected = name === "not-found" ? 404 : 200;
      if (res.status() !== expected) failures.push(`${path} at ${pass}: HTTP ${res.status()}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) failures.push(`${path} at ${pass}: ${overflow}px wider than the window`);
      await page.addScriptTag({ content: axeSource });
      const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
      const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
      counts[pass] = (counts[pass] ?? 0) + bad.length;
      for (const v of bad) {
        failures.push(`${path} at ${pass}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")})`);
      }
      await page.screenshot({ path: `${shots}/${name}-${pass}.png`, fullPage: pass === "1440" });
    }
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(`pages: ${pages.length} pages at 1440 and 390 px and 1440 px dark; serious or critical axe violations: 1440 px ${counts["1440"] ?? 0}, 390 px ${counts["390"] ?? 0}, 1440 px dark ${counts["1440-dark"] ?? 0}`);
assert.deepEqual(failures, [], failures.join("\n"));
console.log("pages: ok");
