// The dashboard's visual reference: one viewport screenshot per page type at 1440 and 390 px,
// as JPEG, of a running `cxm demo`. `node reference.mjs OUT_DIR` with CXM_URL, CXM_EMAIL and
// CXM_PASSWORD set (the demo prints them); docs/screenshots holds the set it made.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [out] = process.argv.slice(2);
const base = process.env.CXM_URL;
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
// a page of the first row a list links to (a customer, a journey, a ticket)
async function firstLink(page, list, prefix) {
  await page.goto(`${base}${list}`);
  const hrefs = await page.locator(`main a[href^="${prefix}"]`).evaluateAll((as) => as.map((a) => a.getAttribute("href")));
  return hrefs.find((h) => h !== prefix && !h.startsWith(`${prefix}?`) && !h.includes("/build")) ?? list;
}
try {
  for (const width of [1440, 390]) {
    const context = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${base}/login`);
    await page.fill("#email", process.env.CXM_EMAIL);
    await page.fill("#password", process.env.CXM_PASSWORD);
    await page.click("button[type=submit]");
    await page.waitForURL(`${base}/`);
    const pages = [
      ["home", "/"], ["customer", await firstLink(page, "/customers", "/customers/")],
      ["accounts", "/accounts"], ["voc", "/voc"], ["themes", "/themes"],
      ["journey", await firstLink(page, "/journeys", "/journeys/")], ["tickets", "/tickets"],
    ];
    for (const [name, path] of pages) {
      await page.goto(`${base}${path}`);
      await page.screenshot({ path: `${out}/${name}-${width}.jpg`, type: "jpeg", quality: 60 });
    }
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(`reference: ${out}`);
