// Drives the dashboard as a CX lead would: sign in, read the overview, search a customer,
// read her context, unmerge a wrong link, check the quarantine; and as a viewer, who may not unmerge.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import assert from "node:assert/strict";

const base = process.env.CXM_URL;
const shots = process.env.SHOTS ?? "target/e2e";
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const offsite = [];
// the Content-Security-Policy allows nothing inline: any violation (or other console error)
// on any page fails the run
const consoleErrors = [];
function watch(page) {
  // a 4xx the test provokes on purpose is logged as "Failed to load resource"; anything else
  // (a script error, a refused inline style or script) is a failure
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) consoleErrors.push(`${page.url()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  return page;
}

async function signIn(email, password) {
  const context = await browser.newContext();
  const page = watch(await context.newPage());
  page.on("request", (r) => { if (!r.url().startsWith(base)) offsite.push(r.url()); });
  await page.goto(`${base}/customers`);
  assert.match(page.url(), /\/login\?next=%2Fcustomers|\/login\?next=\/customers/);
  // keyboard only: the form is reachable and submits with Enter (focus is set explicitly:
  // typing before autofocus lands would lose the first characters)
  await page.locator("#email").focus();
  await page.keyboard.type(email);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/customers`);
  return page;
}

try {
  // wrong password: an error, no session
  {
    const page = watch(await browser.newPage());
    await page.goto(`${base}/login`);
    await page.fill("#email", "owner@example.com");
    await page.fill("#password", "not the password");
    await page.click("button[type=submit]");
    await page.getByRole("alert").waitFor();
    assert.match(await page.getByRole("alert").innerText(), /Wrong email or password/);
    await page.close();
  }

  // a customer answers the hosted survey (no sign-in, no JavaScript needed), gets a
  // follow-up because "fine" says little, and answers it
  {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const survey = watch(await context.newPage());
    await survey.goto(process.env.SURVEY_URL);
    await survey.getByRole("radio", { name: "10" }).check();
    await survey.getByRole("textbox", { name: "What is the main reason for your score?" }).fill("fine");
    await survey.getByRole("button", { name: "Send" }).click();
    await survey.getByText("Could you tell us a bit more?").waitFor();
    await survey.getByRole("textbox").fill("The agent fixed my billing problem on the first call");
    await survey.getByRole("button", { name: "Send" }).click();
    await survey.getByTestId("thanks").waitFor();
    await survey.screenshot({ path: `${shots}/survey-thanks.png` });
    await context.close();
  }

  // the embeddable widget on a page of another origin: a 9 and a reason
  {
    const shop = watch(await browser.newPage());
    await shop.setContent(`<html><body><h1>Shop</h1><script src="${base}/assets/cxm-survey.js" data-key="${process.env.WRITE_KEY}" data-survey="website"></script></body></html>`);
    await shop.getByRole("button", { name: "Score 9 of 10" }).click();
    await shop.getByRole("textbox", { name: "Reason for your score" }).fill("Checkout was quick");
    await shop.getByRole("button", { name: "Send" }).click();
    assert.match(await shop.getByRole("status").innerText(), /Thank you/);
    await shop.close();
  }

  const page = await signIn("owner@example.com", "owner-password-1");

  // home opens on money and what to do; a tenant that has not set up everything sees where to start
  await page.getByRole("link", { name: "Home" }).click();
  assert.match(await page.getByTestId("revenue-at-risk").innerText(), /Revenue at risk\s+\$0\b/);
  assert.match(await page.getByTestId("growth-potential").innerText(), /Growth potential\s+\$/);
  assert.match(await page.getByTestId("start-here").innerText(), /Map a journey/);
  assert.match(await page.getByTestId("score-nps").innerText(), /answers/);
  await page.screenshot({ path: `${shots}/home.png`, fullPage: true });

  // data coming in (under Settings): totals and a chart with bars and tooltips
  await page.getByRole("link", { name: "Data coming in" }).click();
  assert.equal(await page.getByTestId("total-events").innerText(), "8");
  assert.equal(await page.getByTestId("profiles").innerText(), "2");
  assert.equal(await page.getByTestId("quarantined").innerText(), "1");
  const bars = await page.locator(".chart svg rect").count();
  assert.ok(bars >= 3, `expected stacked bars, got ${bars}`);
  assert.match(await page.locator(".chart svg rect title").first().textContent(), /events/);
  await page.screenshot({ path: `${shots}/data.png`, fullPage: true });

  // live search (htmx) finds Grace by email fragment
  await page.getByRole("link", { name: "Customers" }).click();
  await page.getByRole("searchbox", { name: "Search customers" }).fill("grace@");
  await page.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 1);
  await page.getByRole("link", { name: "Grace Hopper" }).click();
  await page.getByTestId("summary").waitFor();

  // the context an agent needs: summary, switch, timeline across channels, merge history
  const summary = await page.getByTestId("summary").innerText();
  assert.match(summary, /Billing: payment failed twice since \w{3}; chatted 2h ago; now calling/);
  assert.match(await page.getByTestId("channel-switch").innerText(), /Switched from chat to voice/);
  // events across channels, the identify call folded away, and the survey she just answered
  // inline with its score and her words
  assert.equal(await page.getByTestId("timeline").locator("tbody tr.event").count(), 6);
  assert.match(await page.getByTestId("timeline").innerText(), /NPS 10/);
  assert.match(await page.getByTestId("timeline").innerText(), /The agent fixed my billing problem on the first call/);
  assert.match(await page.getByTestId("latest-answer").innerText(), /NPS 10/);
  assert.match(await page.getByText(/1 profile update .* folded away/).innerText(), /show them/);
  assert.match(await page.getByTestId("ledger").innerText(), /merged p_[0-9a-f]+ into this profile/);
  await page.screenshot({ path: `${shots}/customer.png`, fullPage: true });
  // the timeline filters: answers only, then one channel's events
  const customerUrl = page.url();
  await page.getByRole("combobox", { name: "What to show" }).selectOption("answers");
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await page.waitForURL(/show=answers/);
  assert.equal(await page.getByTestId("timeline").locator("tbody tr.event").count(), 0, "answers only");
  assert.match(await page.getByTestId("timeline").innerText(), /NPS 10/);
  await page.getByRole("combobox", { name: "What to show" }).selectOption("events");
  await page.getByRole("combobox", { name: "Channel" }).first().selectOption("voice");
  await page.getByRole("button", { name: "Show", exact: true }).click();
  await page.waitForURL(/channel=voice/);
  const voiceRows = await page.getByTestId("timeline").locator("tbody tr").allInnerTexts();
  assert.ok(voiceRows.length >= 1 && voiceRows.every((r) => /voice/.test(r)), `voice only: ${voiceRows}`);
  await page.goto(customerUrl);

  // unmerge the anonymous browser id: it leaves Grace's profile
  await page.getByRole("button", { name: "Unmerge anonymous_id browser-1" }).click();
  await page.getByRole("status").waitFor();
  assert.match(await page.getByRole("status").innerText(), /Blocked anonymous_id:browser-1 and rebuilt identities from 8 events/);
  assert.equal(await page.getByRole("button", { name: "Unmerge anonymous_id browser-1" }).count(), 0);
  assert.match(await page.getByTestId("ledger").innerText(), /identifier blocked/);

  // themes: discover now, then name the billing theme; the name shows everywhere
  await page.getByRole("link", { name: "Themes" }).click();
  await page.getByRole("button", { name: "Re-discover now" }).click();
  assert.match(await page.getByRole("status").innerText(), /Discovered \d+ themes in 1[0-9] answers/);
  const billing = page.getByTestId("theme-list").locator("tbody tr", { hasText: /billing/i }).first();
  await billing.locator("summary").click();
  await billing.getByRole("textbox", { name: /^New name for/ }).fill("Billing fixes");
  await billing.getByRole("button", { name: "Rename" }).click();
  assert.match(await page.getByRole("status").innerText(), /Renamed to Billing fixes/);
  assert.match(await page.getByTestId("theme-list").innerText(), /Billing fixes/);
  assert.match(await page.getByTestId("theme-edits").innerText(), /rename .*Billing fixes/);
  assert.ok((await page.locator("[data-testid=theme-list] svg polyline").count()) >= 2, "a weekly sparkline per theme");
  await page.screenshot({ path: `${shots}/themes.png`, fullPage: true });

  // voice of the customer: NPS from the api answers, the survey and the widget (4 promoters, 1 detractor of 5)
  await page.getByRole("link", { name: "Voice of the customer" }).click();
  // a whole-point NPS with its n; no period before, so no change is claimed
  const nps = await page.getByTestId("metric-nps").innerText();
  assert.match(nps, /^NPS\s+60\s/);
  assert.match(nps, /5 answers · none before/);
  assert.match(await page.getByTestId("change-nps").innerText(), /previous period has no answers/);
  assert.doesNotMatch(nps, /significant/);
  assert.match(await page.getByTestId("nps-legend").innerText(), /95% interval/);
  // the shared date range: one click narrows the page and the themes link keeps it
  await page.getByTestId("range-picker").getByRole("button", { name: "30 days" }).click();
  await page.waitForURL(/\/voc\?days=30/);
  assert.match(await page.getByTestId("metric-nps").innerText(), /5 answers/);
  assert.match(await page.getByTestId("themes").locator("a").first().getAttribute("href"), /\/themes\?days=30/);
  await page.goto(`${base}/voc?from=2026-02-30`);
  assert.match(await page.locator("main").innerText(), /From must be a day as YYYY-MM-DD/);
  await page.goto(`${base}/voc`);
  assert.match(await page.getByTestId("metric-csat").innerText(), /100/);
  assert.ok((await page.locator(".chart svg rect").count()) >= 1, "an NPS bar for this week");
  assert.match(await page.getByTestId("themes").innerText(), /Billing fixes/);
  await page.screenshot({ path: `${shots}/voc.png`, fullPage: true });

  // surveys: the response counted, with a real response rate; a new invitation link
  await page.getByRole("link", { name: "Surveys" }).click();
  assert.match(await page.getByTestId("surveys").innerText(), /How did we do\?[\s\S]*1\s+1\s+1\s+100(\.0)?%/);
  await page.getByRole("textbox", { name: "Customer for post-ticket" }).fill("user_id:alan-1");
  await page.getByRole("button", { name: "New link" }).click();
  assert.match(await page.getByTestId("new-link").innerText(), /\/s\/[A-Za-z0-9_-]+/);
  // a broken definition is explained, not stored
  await page.locator("#survey_id").fill("broken");
  await page.locator("#definition").fill('{"name": "x", "questions": []}');
  await page.getByRole("button", { name: "Save survey" }).click();
  assert.match(await page.getByRole("alert").innerText(), /1 to 50 questions/);

  // the survey builder: a form, no JSON; branching and targeting included
  await page.getByRole("link", { name: "Surveys" }).click();
  await page.getByRole("button", { name: "New survey" }).or(page.getByRole("link", { name: "New survey" })).click();
  const b = page.getByTestId("builder");
  await b.getByLabel("Survey id").fill("after-chat");
  await b.getByLabel("Name", { exact: true }).fill("After your chat");
  await b.getByLabel("Question 3 prompt").fill("What should we fix first?");
  await b.getByLabel("Question 3 type").selectOption("text");
  await b.getByLabel("Question 3 depends on").fill("nps");
  await b.getByLabel("Question 3 condition", { exact: true }).selectOption("at_most");
  await b.getByLabel("Question 3 condition value").fill("6");
  await b.getByLabel("After events (comma separated)").fill("Chat Ended");
  await b.getByLabel("On channels").fill("chat");
  await b.getByLabel("Sample, % of events").fill("50");
  await b.getByRole("button", { name: "Save survey" }).click();
  assert.match(await page.getByRole("status").innerText(), /Saved after-chat as version 1/);
  assert.match(await page.getByTestId("surveys").innerText(), /Invites after Chat Ended, on chat, 50% sampled, via email/);
  // editing starts from the saved version; a bad condition is explained and nothing is lost
  await page.getByTestId("surveys").locator("tr", { hasText: "after-chat" }).getByRole("link", { name: "Edit" }).click();
  assert.equal(await page.getByTestId("builder").getByLabel("Name", { exact: true }).inputValue(), "After your chat");
  await page.getByTestId("builder").getByLabel("Question 3 condition value").fill("low");
  await page.getByTestId("builder").getByRole("button", { name: "Save survey" }).click();
  assert.match(await page.getByRole("alert").innerText(), /Question 3: the condition needs a whole number/);
  assert.equal(await page.getByTestId("builder").getByLabel("Question 3 prompt").inputValue(), "What should we fix first?");

  // quarantine lists the event without an identity and says why
  await page.getByRole("link", { name: "Quarantine" }).click();
  assert.match(await page.getByTestId("quarantine").innerText(), /missing_identity/);

  // keys: create a write key (shown once), it ingests, then revoke it
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByRole("textbox", { name: "Key name" }).fill("mobile app");
  await page.getByRole("button", { name: "Create key" }).click();
  const newKey = (await page.getByTestId("new-key").locator("code").innerText()).trim();
  assert.match(newKey, /^cxm_wk_/);
  await page.screenshot({ path: `${shots}/keys.png`, fullPage: true });
  const sent = await fetch(`${base}/v1/track`, { method: "POST", headers: { authorization: `Bearer ${newKey}` }, body: JSON.stringify({ userId: "key-test", event: "Logged In" }) });
  assert.equal(sent.status, 200);
  await page.getByRole("button", { name: "Revoke mobile app" }).click();
  await page.waitForURL(`${base}/settings/keys`);
  assert.match(await page.getByTestId("keys").innerText(), /mobile app\s+write\s+\S+…\s+\d{1,2} \w{3} \d{4}, \d{2}:\d{2} \S+\s+revoked/);
  const refused = await fetch(`${base}/v1/track`, { method: "POST", headers: { authorization: `Bearer ${newKey}` }, body: JSON.stringify({ userId: "key-test", event: "Logged In" }) });
  assert.equal(refused.status, 401);
  assert.equal(await page.getByTestId("new-key").count(), 0, "the key is shown only once");

  // a journey created in the editor: a typo in an event name is refused and the text kept,
  // the fixed definition is saved and measured from the events already sent
  const ago = (min) => new Date(Date.now() - min * 60000).toISOString();
  const trial = await fetch(`${base}/v1/batch`, { method: "POST", headers: { authorization: `Basic ${Buffer.from(`${process.env.WRITE_KEY}:`).toString("base64")}` },
    body: JSON.stringify({ batch: [
      { type: "track", userId: "trial-1", event: "Trial Started", timestamp: ago(300) },
      { type: "track", userId: "trial-1", event: "Demo Booked", timestamp: ago(200) },
      { type: "track", userId: "trial-2", event: "Trial Started", timestamp: ago(100) },
    ] }) });
  assert.equal(trial.status, 200);
  await page.getByRole("link", { name: "Journeys" }).click();
  await page.waitForURL(`${base}/journeys`);
  const editor = page.getByRole("textbox", { name: /Definition/ });
  const definition = (signup) => `id: first-contact
name: Trial to demo
owner: cx-lead@example.com
stages:
  - id: signup
    name: Sign-up
    owner: growth
    entry: [${signup}]
    target_hours: 24
  - id: contact
    name: Demo
    owner: sales
    entry: [Demo Booked]
    moment_of_truth: true
`;
  await editor.fill(definition("Trial Startd"));
  await page.getByRole("button", { name: "Save journey" }).click();
  assert.match(await page.getByRole("alert").innerText(), /"Trial Startd".*check the name/);
  assert.match(await page.getByRole("textbox", { name: /Definition/ }).inputValue(), /Trial Startd/, "what was typed is kept");
  await page.getByRole("textbox", { name: /Definition/ }).fill(definition("Trial Started"));
  await page.getByRole("button", { name: "Save journey" }).click();
  await page.waitForURL(`${base}/journeys/first-contact`);
  for (let i = 0; i < 50; i++) {
    if ((await page.locator('[data-stage="signup"] td').nth(3).innerText()).trim() === "2") break;
    await page.waitForTimeout(200);
    await page.reload();
  }
  assert.equal((await page.locator('[data-stage="signup"] td').nth(3).innerText()).trim(), "2", "two trials started");
  assert.equal((await page.locator('[data-stage="contact"] td').nth(3).innerText()).trim(), "1", "one booked a demo");
  assert.match(await page.getByRole("img", { name: /Entries per stage/ }).getAttribute("aria-label"), /Sign-up 2, Demo 1/);
  assert.match(await page.getByTestId("jps").innerText(), /^\d+(\.\d)?$/);
  await page.screenshot({ path: `${shots}/journey.png`, fullPage: true });
  // the shared date range: the last 30 days hold both trials; a range before they happened holds none
  await page.getByTestId("range-picker").getByRole("button", { name: "30 days" }).click();
  await page.waitForURL(`${base}/journeys/first-contact?days=30`);
  assert.match(await page.getByTestId("range-note").innerText(), /visits that began in it/);
  assert.equal((await page.locator('[data-stage="signup"] td').nth(3).innerText()).trim(), "2", "both trials are in the last 30 days");
  await page.goto(`${base}/journeys/first-contact?from=2020-01-01&to=2020-01-31`);
  assert.equal((await page.locator('[data-stage="signup"] td').nth(3).innerText()).trim(), "0", "none in January 2020");
  await page.getByTestId("range-picker").getByRole("button", { name: "All time" }).click();
  assert.match(await page.getByTestId("range-note").innerText(), /^All time/);

  // the visual editor: a stage added on a card, dragged to the front, the journey measured
  // per account; the text follows every change and the journey saves in the new order
  await page.goto(`${base}/journeys`);
  const visual = page.getByTestId("journey-visual");
  await visual.getByLabel("Journey id").fill("visual-journey");
  await visual.getByLabel("Journey name").fill("Built visually");
  await visual.getByRole("button", { name: "+ Add stage" }).click();
  const added = visual.locator(".jv-stage").last();
  await added.getByLabel("Id", { exact: true }).fill("trial");
  await added.getByLabel("Name", { exact: true }).fill("Trial");
  await added.getByLabel("Owner", { exact: true }).fill("growth");
  await added.getByLabel("Entry events").fill("Trial Started");
  // both cards on screen: a drag that has to scroll starts from whatever the scroll put
  // under the pointer
  const viewport = page.viewportSize();
  await page.setViewportSize({ width: viewport.width, height: 2400 });
  await visual.locator(".jv-stage").first().scrollIntoViewIfNeeded();
  await added.locator(".jv-handle").dragTo(visual.locator(".jv-stage").first().locator("header"));
  await page.setViewportSize(viewport);
  const text = () => page.getByRole("textbox", { name: /Definition/ }).inputValue();
  assert.match(await text(), /stages:\n  - id: trial\n    name: Trial\n    owner: growth\n    entry: \[Trial Started\]/, "the dragged stage leads");
  assert.match(await page.locator(".jv-flow").getAttribute("aria-label"), /^Flow: Trial → Sign-up → Activation → First payment$/);
  await visual.getByLabel("Measured per").selectOption("account");
  assert.match(await text(), /unit: account/);
  await visual.getByRole("button", { name: "Remove First payment" }).click();
  assert.doesNotMatch(await text(), /First payment/);
  await page.screenshot({ path: `${shots}/journey-editor.png`, fullPage: true });
  await page.getByRole("button", { name: "Save journey" }).click();
  await page.waitForURL(`${base}/journeys/visual-journey`);
  assert.equal(await page.locator("[data-testid=stage-table] tbody tr").first().getAttribute("data-stage"), "trial");
  assert.equal(await page.getByTestId("unit").innerText(), "account");

  // an account with a failed payment gets an alert within seconds; acknowledging it from the inbox
  const umbrella = await fetch(`${base}/v1/batch`, { method: "POST", headers: { authorization: `Basic ${Buffer.from(`${process.env.WRITE_KEY}:`).toString("base64")}` },
    body: JSON.stringify({ batch: [
      { type: "group", userId: "ops-1", groupId: "umbrella", traits: { name: "Umbrella Corp", arr: 90000 }, timestamp: ago(600) },
      { type: "track", userId: "ops-1", event: "Payment Failed", timestamp: ago(60) },
    ] }) });
  assert.equal(umbrella.status, 200);
  await page.getByRole("link", { name: "Alerts" }).click();
  for (let i = 0; i < 60 && !(await page.getByText("Umbrella Corp: 1 failed payment in 14 days").count()); i++) {
    await page.waitForTimeout(250);
    await page.reload();
  }
  const alertRow = page.locator("tr", { hasText: "Umbrella Corp: 1 failed payment in 14 days" });
  await alertRow.getByRole("button", { name: "Acknowledge" }).click();
  await page.goto(`${base}/alerts?status=acknowledged`);
  assert.equal(await page.getByText("Umbrella Corp: 1 failed payment in 14 days").count(), 1);
  await page.goto(`${base}/accounts`);
  assert.match(await page.locator('[data-account="umbrella"]').innerText(), /Umbrella Corp[\s\S]*1 failed payment in 14 days/);
  await page.screenshot({ path: `${shots}/accounts.png`, fullPage: false });
  // the account has a page of its own, and the alert is on it
  await page.locator('[data-account="umbrella"]').getByRole("link", { name: "Umbrella Corp" }).click();
  await page.waitForURL(/\/accounts\/umbrella$/);
  assert.match(await page.getByTestId("account-arr").innerText(), /\$90,000/);
  assert.match(await page.getByTestId("account-alerts").innerText(), /1 failed payment in 14 days/);
  assert.match(await page.getByTestId("account-people").innerText(), /ops-1/);
  await page.screenshot({ path: `${shots}/account.png`, fullPage: true });
  // and home counts its ARR as revenue at risk, in the tenant's currency
  await page.getByRole("link", { name: "Home" }).click();
  assert.match(await page.getByTestId("revenue-at-risk").innerText(), /\$90,000[\s\S]*1 account with an open alert/);
  assert.match(await page.getByTestId("north-star").innerText(), /North Star: /);
  assert.match(await page.getByTestId("this-week").innerText(), /alerts? raised/);
  // a home per role, remembered: the support lead's opens on SLAs and reviews, the success
  // manager's on at-risk accounts by ARR
  await page.getByRole("button", { name: "Support lead" }).click();
  assert.match(await page.getByTestId("tickets-overdue").innerText(), /Tickets past their SLA/);
  await page.goto(`${base}/`);
  assert.equal(await page.getByTestId("tickets-overdue").count(), 1, "the choice is remembered");
  await page.getByRole("button", { name: "Customer success" }).click();
  assert.match(await page.getByTestId("my-alerts").innerText(), /Alerts you own/);
  await page.screenshot({ path: `${shots}/home-success.png`, fullPage: true });
  await page.getByRole("button", { name: "CX leader" }).click();
  assert.equal(await page.getByTestId("north-star").count(), 1);

  // the alert becomes a ticket whose check is the account's health; it refuses to close until
  // the data says the account recovered
  const unhappy = await fetch(`${base}/api/v1/feedback`, { method: "POST", headers: { authorization: `Bearer ${process.env.WRITE_KEY}` },
    body: JSON.stringify({ answers: [{ response_id: "u-1", question: "nps", type: "nps", value: 2, identifier: "user_id:ops-1" }] }) });
  assert.equal(unhappy.status, 200);
  let umbrellaScore = 100;
  for (let i = 0; i < 80 && umbrellaScore >= 75; i++) {
    await page.waitForTimeout(250);
    const acct = await fetch(`${base}/api/v1/accounts/umbrella`, { headers: { authorization: `Bearer ${process.env.SECRET_KEY}` } });
    if (acct.status === 200) umbrellaScore = (await acct.json()).score;
  }
  assert.ok(umbrellaScore < 75, `the unhappy answer lowers Umbrella's health (${umbrellaScore})`);
  await page.goto(`${base}/alerts?status=acknowledged`);
  const ackRow = page.locator("tr", { hasText: "Umbrella Corp: 1 failed payment in 14 days" });
  await ackRow.getByText("Open a ticket").click();
  // the owner is picked from the tenant's people
  await ackRow.getByRole("combobox", { name: /Owner of the ticket/ }).selectOption("owner@example.com");
  await ackRow.getByRole("button", { name: "Open ticket" }).click();
  await page.waitForURL(/\/tickets\/\d+$/);
  assert.equal(await page.getByTestId("ticket-state").innerText(), "open");
  assert.match(await page.getByTestId("check").innerText(), /umbrella recovers to health ≥ 75/);
  await page.getByRole("button", { name: "in progress" }).click();
  await page.getByRole("button", { name: "fix shipped" }).click();
  // Close stays disabled until the check passes, and says why
  assert.ok(await page.getByRole("button", { name: "Close", exact: true }).isDisabled(), "Close is disabled before a passing check");
  await page.getByRole("button", { name: "Check now" }).click();
  assert.match(await page.getByTestId("verdict").innerText(), /Not passing: health [\d.]+; needs at least 75/);
  assert.match(await page.getByTestId("close-why").innerText(), /Close needs the check to pass: the last check said “health [\d.]+; needs at least 75”/);
  assert.ok(await page.getByRole("button", { name: "Close", exact: true }).isDisabled());
  assert.equal(await page.getByTestId("ticket-state").innerText(), "verifying", "still open for business");
  // the signal set changes (a second failed payment and a second unhappy answer are needed now): the account recovers
  const signals = await (await fetch(`${base}/api/v1/signals`, { headers: { authorization: `Bearer ${process.env.SECRET_KEY}` } })).json();
  delete signals.version;
  for (const s of signals.signals) if (s.kind === "payment_failed" || s.kind === "low_score") s.threshold = 2;
  const put = await fetch(`${base}/api/v1/signals`, { method: "PUT", headers: { authorization: `Bearer ${process.env.SECRET_KEY}` }, body: JSON.stringify(signals) });
  assert.equal(put.status, 200);
  await page.getByRole("button", { name: "Check now" }).click();
  assert.match(await page.getByTestId("verdict").innerText(), /^Passing/);
  await page.getByRole("button", { name: "Close", exact: true }).click();
  await page.waitForURL(/\/tickets\/\d+$/);
  assert.equal(await page.getByTestId("ticket-state").innerText(), "closed");
  assert.match(await page.getByTestId("timeline").innerText(), /closed verified/);
  await page.screenshot({ path: `${shots}/ticket.png`, fullPage: true });
  await page.getByRole("link", { name: "← Remediation" }).click();
  assert.match(await page.locator('[data-state="closed"]').innerText(), /Umbrella Corp/);

  // an agent asks for a 120 refund: allowed with review (L2); the lead reverses it in the queue
  const api = (path, body) => fetch(`${base}${path}`, { method: "POST", headers: { authorization: `Bearer ${process.env.SECRET_KEY}` }, body: JSON.stringify(body) });
  assert.equal((await api("/api/v1/agents", { name: "billing-bot", kind: "bot" })).status, 201);
  const asked = await api("/api/v1/decisions", { agent: "billing-bot", action: "refund", customer: "user_id:grace-1", resource: "order-77", context: { amount: 120, currency: "USD", reason: "duplicate charge on the card" } });
  assert.equal(asked.status, 200);
  const decision = await asked.json();
  assert.equal(decision.decision, "review");
  assert.equal(decision.level, "L2");
  await page.getByRole("link", { name: "Review queue" }).click();
  const item = page.locator(`tr[data-decision="${decision.decision_id}"]`);
  assert.match(await item.innerText(), /billing-bot wants to refund 120\.00 USD for user_id:grace-1/);
  // the customer is a link to her page, and the row says why a person must look
  assert.equal(await item.getByRole("link", { name: "user_id:grace-1" }).count(), 1);
  assert.match(await item.innerText(), /A review: the agent acted already; check it was right/);
  await item.locator("summary", { hasText: "Reverse" }).click();
  await item.getByRole("textbox", { name: /Why reverse/ }).fill("the second charge was already refunded");
  await item.getByRole("button", { name: "Reverse" }).click();
  await page.waitForURL(/\/reviews\?done=reversed/);
  assert.match(await page.getByTestId("review-done").innerText(), /Reversed: billing-bot wants to refund 120\.00 USD for user_id:grace-1/);
  assert.equal(await page.locator(`tr[data-decision="${decision.decision_id}"]`).count(), 0);
  await page.getByRole("link", { name: "Decision log" }).click();
  assert.match(await page.locator(`tr[data-decision="${decision.decision_id}"]`).innerText(), /reversed by owner@example.com: the second charge was already refunded/);
  await page.getByRole("link", { name: "Agents" }).click();
  assert.match(await page.locator('[data-agent="billing-bot"]').innerText(), /billing-bot[\s\S]*100(\.0)?%/);
  assert.match(await page.locator('[data-level="L2"]').innerText(), /refund-50-to-200/);
  await page.screenshot({ path: `${shots}/agents.png`, fullPage: true });

  // the agent's message to Grace is signed; she opens the link, pastes it, and sees it is genuine;
  // a changed amount is caught
  const message = "I'm an automated assistant. Grace, your refund of 60.00 USD was approved.";
  const signedRes = await api("/api/v1/messages/sign", { agent: "billing-bot", text: message, customer: "user_id:grace-1", channel: "email" });
  assert.equal(signedRes.status, 200);
  const signedMsg = await signedRes.json();
  const customer = watch(await browser.newPage());
  customer.on("request", (r) => { if (!r.url().startsWith(base)) offsite.push(r.url()); });
  await customer.goto(`${base}${signedMsg.verify_url}`);
  assert.equal(await customer.getByTestId("verdict").getAttribute("data-status"), "valid");
  await customer.getByLabel("The message as you received it").fill(message);
  await customer.getByRole("button", { name: "Verify" }).click();
  assert.match(await customer.getByTestId("verdict").innerText(), /Genuine[\s\S]*billing-bot[\s\S]*text is exactly what was sent/);
  assert.match(await customer.getByTestId("verdict").innerText(), /Automated[\s\S]*I'm an automated assistant/);
  await customer.screenshot({ path: `${shots}/verify.png`, fullPage: true });
  await customer.getByLabel("The message as you received it").fill(message.replace("60.00", "600.00"));
  await customer.getByRole("button", { name: "Verify" }).click();
  assert.equal(await customer.getByTestId("verdict").getAttribute("data-status"), "altered");
  assert.match(await customer.getByTestId("verdict").innerText(), /Altered/);
  await customer.close();

  // an experiment written in the editor, started, moved to a 5 % canary, with every step in
  // its history; then the maturity self-assessment beside the evidence, and the equity page
  // saying plainly that there are no purchases to value yet
  await page.getByRole("link", { name: "Experiments" }).click();
  await page.locator("summary", { hasText: "New experiment" }).click();
  await page.getByTestId("experiment-definition").fill(JSON.stringify({
    id: "faster-refunds", name: "Faster refund replies", owner: "owner@example.com", kind: "automation",
    arms: [{ key: "control" }, { key: "fast" }], metric: { event: "Ticket Resolved", window_days: 7 },
    guardrails: [{ event: "Ticket Escalated", direction: "decrease", max_relative_change: 0.2 }] }));
  await page.getByRole("button", { name: "Create as draft" }).click();
  await page.waitForURL(/\/experiments\/faster-refunds$/);
  assert.equal(await page.getByTestId("experiment-status").innerText(), "draft");
  await page.getByRole("button", { name: "Start" }).click();
  await page.waitForURL(/\/experiments\/faster-refunds$/);
  assert.equal(await page.getByTestId("experiment-status").innerText(), "running");
  await page.getByRole("button", { name: "5.0 %" }).click();
  await page.waitForURL(/\/experiments\/faster-refunds$/);
  const history = await page.getByTestId("experiment-history").innerText();
  assert.match(history, /rollout[\s\S]*"to":5[\s\S]*started[\s\S]*created/);
  const warnings = await page.getByTestId("experiment-warning").allInnerTexts();
  assert.ok(warnings.some((w) => /no exposures yet/.test(w)), warnings.join(" | "));
  assert.ok(warnings.some((w) => /no event named "Ticket Escalated"/.test(w)), warnings.join(" | "));
  await page.screenshot({ path: `${shots}/experiment.png`, fullPage: true });

  await page.getByRole("link", { name: "Maturity and ROI" }).click();
  for (const [q, level] of [["c_suite", 3], ["ai", 4], ["journeys", 3], ["alignment", 2], ["trust", 4]]) {
    await page.locator(`input[name="${q}"][value="${level}"]`).check();
  }
  await page.getByRole("button", { name: "Save assessment" }).click();
  await page.waitForURL(/\/maturity$/);
  assert.equal(await page.getByTestId("self-stage").innerText(), "optimize");
  assert.ok(await page.getByTestId("gap").count() >= 1, "an over-confident answer shows its gap");
  assert.match(await page.getByTestId("roi-total").innerText(), /^1740000$/);
  await page.screenshot({ path: `${shots}/maturity.png`, fullPage: true });
  await page.getByRole("link", { name: "Customer equity" }).click();
  assert.match(await page.getByTestId("equity-message").innerText(), /no value model yet: too little data/);

  // sign out ends the session
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login/);
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/login/);

  // a viewer reads but cannot unmerge
  const viewer = await signIn("viewer@example.com", "viewer-password-1");
  await viewer.getByRole("searchbox", { name: "Search customers" }).fill("Grace");
  await viewer.waitForFunction(() => document.querySelectorAll("#results tbody tr").length === 1);
  await viewer.getByRole("link", { name: "Grace Hopper" }).click();
  await viewer.getByTestId("summary").waitFor();
  assert.equal(await viewer.getByRole("button", { name: /Unmerge/ }).count(), 0);
  await viewer.getByRole("link", { name: "API keys" }).click();
  assert.equal(await viewer.getByRole("button", { name: "Create key" }).count(), 0);

  assert.deepEqual(offsite, [], "the dashboard must not load anything from another origin");
  assert.deepEqual(consoleErrors, [], "no page logs an error or a Content-Security-Policy violation");
  console.log("dashboard: sign-in, home brief, data chart, account page, live search, context, unmerge, quarantine, journeys, alerts, tickets, agent review, signed message, experiments, maturity, equity, roles: ok");
} finally {
  await browser.close();
}
