// Drive the real OpenClaw Control UI in headless Chromium (Debian
// `chromium` + playwright-core from tests/integration/browser/install.sh)
// against a gateway, for tests/integration/test_ui_browser.py.
//
//   node ui.mjs <scenario> '<json options>'
//
// Options: {base: "http://127.0.0.1:PORT", token, shots: dir, timeoutMs}.
// Output: one JSON object per line on stdout ({"event": ...}); the last
// line is {"event":"done", ...} or {"event":"error", message}. The test
// may answer on stdin (one line) where a scenario waits for it.
//
// Scenarios:
//   connect   load opts.path ("/") and wait for the connected state (hello-ok over the
//             page's WebSocket, then the shell's first RPC answered);
//             reports first paint and the HTTP errors seen.
//   pairing   load "/" on a gateway that wants approval: reports the
//             pending requestId, then waits (no click) until the page
//             connects by itself after the test approved it.
//   approve   open /settings/devices, wait until the pending request of
//             opts.deviceId shows, click its Approve button and wait for
//             the device.pair.approve answer.
//   record    the recorder: load "/", then visit each view in the app and
//             record the WS req/res frames per view; reports, per view,
//             the methods sent and the ones that failed.
//   secrets   open /settings/secrets, wait for secrets.store.list; with
//             opts.set {name, value}, add that entry through the page's
//             Add dialog (protected secret) and wait for the list that
//             follows; reports the RPCs and the table's text.
//   dmpairing open /settings/channels (DM access requests), wait until the
//             pending request of opts.sender (a senderId prefix) shows,
//             click its Approve button, confirm in the dialog and wait for
//             the channels.pairing.approve answer and the list after it;
//             reports every RPC of the page and the request's text.
import { createRequire } from "module";
import fs from "fs";
import path from "path";
import readline from "readline";

const require = createRequire(
  path.join(process.env.CLAWGATE_BROWSER_DIR || ".", "node_modules") + "/");
const { chromium } = require("playwright-core");

const [scenario, rawOpts] = process.argv.slice(2);
const opts = JSON.parse(rawOpts || "{}");
const TIMEOUT = opts.timeoutMs || 60000;

// In visiting order. A view's periodic polls may still fire once after the
// next view is entered and be counted there: the views that pass come
// first, so that no failing poll of another view lands in them.
export const VIEWS = {
  sessions: "/sessions",
  logs: "/logs",
  connection: "/settings/connection",
  chat: "/chat",
  settings: "/settings/general",
  systems: "/systems",
  usage: "/usage",
  debug: "/debug",
  devices: "/settings/devices",
  // Last: its channels.status fails until issue 16 lands.
  automations: "/automations",
};

function emit(o) {
  process.stdout.write(JSON.stringify(o) + "\n");
}

const stdinLines = [];
let stdinWaiter = null;
readline.createInterface({ input: process.stdin }).on("line", (l) => {
  if (stdinWaiter) {
    const w = stdinWaiter;
    stdinWaiter = null;
    w(l);
  } else {
    stdinLines.push(l);
  }
});
function readLine() {
  if (stdinLines.length) return Promise.resolve(stdinLines.shift());
  return new Promise((res) => { stdinWaiter = res; });
}

// The WS frames of a page: req/res pairs by id, plus events.
class Recorder {
  constructor(page) {
    this.reqs = new Map();	// id -> {method, params, res, bucket}
    this.bucket = "startup";
    this.waiters = [];
    this.http = [];
    page.on("websocket", (ws) => {
      ws.on("framesent", (f) => this.onFrame(f.payload, "out"));
      ws.on("framereceived", (f) => this.onFrame(f.payload, "in"));
    });
    page.on("response", (r) => {
      if (r.status() >= 400)
        this.http.push({ status: r.status(), url: r.url() });
    });
  }

  onFrame(payload, dir) {
    let f;
    try {
      f = JSON.parse(String(payload));
    } catch {
      return;
    }
    if (dir === "out" && f.type === "req") {
      this.reqs.set(f.id, { method: f.method, params: f.params, res: null,
                            bucket: this.bucket, at: Date.now() });
    } else if (dir === "in" && f.type === "res") {
      const r = this.reqs.get(f.id);
      if (r) {
        r.res = f;
        r.answeredAt = Date.now();
      }
    }
    for (const w of this.waiters.slice()) w();
  }

  // Wait until pred() holds, re-checked on each frame (bounded).
  until(pred, ms = TIMEOUT, what = "condition") {
    return new Promise((resolve, reject) => {
      const check = () => {
        let v;
        try {
          v = pred();
        } catch (e) {
          v = false;
        }
        if (v) {
          this.waiters = this.waiters.filter((w) => w !== check);
          clearTimeout(timer);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error("timed out waiting for " + what));
      }, ms);
      this.waiters.push(check);
      check();
    });
  }

  find(pred) {
    for (const r of this.reqs.values()) if (pred(r)) return r;
    return null;
  }

  // Every request of the bucket answered and nothing new for quietMs
  // (bounded by maxMs): the view has loaded what it asks for.
  async settle(bucket, quietMs = 1200, maxMs = 20000) {
    const end = Date.now() + maxMs;
    for (;;) {
      const mine = [...this.reqs.values()].filter((r) => r.bucket === bucket);
      const pending = mine.filter((r) => !r.res).length;
      const last = Math.max(0, ...mine.map((r) => r.answeredAt || r.at));
      // A view asks for something: wait for its first request, then for
      // a quiet spell with everything answered.
      if (mine.length && !pending && Date.now() - last >= quietMs) return;
      if (Date.now() > end) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  summary(bucket) {
    const methods = {};
    for (const r of this.reqs.values()) {
      if (r.bucket !== bucket || r.method === "connect") continue;
      const m = methods[r.method] || (methods[r.method] = { sent: 0, failed: 0 });
      m.sent++;
      if (r.res && !r.res.ok) {
        m.failed++;
        m.error = r.res.error;
      } else if (!r.res) {
        m.unanswered = (m.unanswered || 0) + 1;
      }
    }
    return methods;
  }
}

async function shot(page, name) {
  if (!opts.shots) return;
  fs.mkdirSync(opts.shots, { recursive: true });
  await page.screenshot({ path: path.join(opts.shots, name + ".png") })
    .catch(() => {});
}

function hello(rec) {
  return rec.find((r) => r.method === "connect" && r.res && r.res.ok &&
                  r.res.payload && r.res.payload.type === "hello-ok");
}

// Connected: a hello-ok, then an RPC of the shell answered after it.
async function waitConnected(rec, ms = TIMEOUT) {
  await rec.until(() => {
    const h = hello(rec);
    return h && rec.find((r) => r.method !== "connect" &&
                         r.at >= h.answeredAt && r.res);
  }, ms, "the connected state");
  return hello(rec).res.payload;
}

async function firstPaint(page) {
  // The paint entries are queued after the frame is presented, which a
  // loaded machine may do after load: wait for first-contentful-paint
  // (buffered observer, bounded at 10 s) before reading them.
  await page.evaluate(() => new Promise((resolve) => {
    const t = setTimeout(resolve, 10000);
    new PerformanceObserver((list, obs) => {
      if (list.getEntries().some((e) =>
        e.name === "first-contentful-paint")) {
        clearTimeout(t);
        obs.disconnect();
        resolve();
      }
    }).observe({ type: "paint", buffered: true });
  }));
  return page.evaluate(() => {
    const p = performance.getEntriesByType("paint");
    const fp = p.find((e) => e.name === "first-paint");
    const fcp = p.find((e) => e.name === "first-contentful-paint");
    const nav = performance.getEntriesByType("navigation")[0];
    return {
      firstPaintMs: fp ? fp.startTime : null,
      firstContentfulPaintMs: fcp ? fcp.startTime : null,
      responseEndMs: nav ? nav.responseEnd : null,
      domContentLoadedMs: nav ? nav.domContentLoadedEventEnd : null,
      loadMs: nav ? nav.loadEventEnd : null,
    };
  });
}

async function gotoApp(page, p = "/") {
  const url = opts.base + p + "#token=" + encodeURIComponent(opts.token);
  await page.goto(url, { waitUntil: "load", timeout: TIMEOUT });
}

async function scenarioConnect(page, rec) {
  await gotoApp(page, opts.path || "/");
  const h = await waitConnected(rec);
  // The shell says so (opts.connectedText null: only the frames count,
  // e.g. a gateway whose UI lands on its first-run page).
  const want = opts.connectedText === undefined ? "Connected" :
    opts.connectedText;
  if (want)
    await page.waitForFunction((t) => document.body.innerText.includes(t),
                               want, { timeout: TIMEOUT });
  const paint = await firstPaint(page);
  await shot(page, "connect");
  emit({ event: "done", server: h.server, paint, http: rec.http,
         location: await page.evaluate(() => location.pathname),
         text: (await page.innerText("body")).slice(0, 4000) });
}

async function scenarioPairing(page, rec) {
  await gotoApp(page, "/");
  const denied = await rec.until(() => rec.find(
    (r) => r.method === "connect" && r.res && !r.res.ok &&
      r.res.error.details && r.res.error.details.code === "PAIRING_REQUIRED"),
  TIMEOUT, "the pairing-required answer");
  await shot(page, "pairing-waiting");
  emit({ event: "pending", error: denied.res.error });
  await readLine();	// the test approved the request
  const h = await waitConnected(rec);
  // The frames come first, the shell's text a render later (as in
  // scenarioConnect): reading the body at once raced with it.
  await page.waitForFunction((t) => document.body.innerText.includes(t),
                             "Connected", { timeout: TIMEOUT });
  await shot(page, "pairing-connected");
  emit({ event: "done", server: h.server,
         text: (await page.innerText("body")).slice(0, 4000) });
}

async function scenarioApprove(page, rec) {
  await gotoApp(page, "/settings/devices");
  await waitConnected(rec);
  // The pending request of the other device: its card names the device id
  // (shortened); the Approve button sits in the same card.
  const short = opts.deviceId.slice(0, 8);
  const btn = page.locator(
    `xpath=//*[contains(normalize-space(.), "${short}")]` +
    `/ancestor-or-self::*[.//button[normalize-space(.)="Approve"]][1]` +
    `//button[normalize-space(.)="Approve"]`).first();
  await btn.waitFor({ state: "visible", timeout: TIMEOUT });
  await shot(page, "devices-pending");
  await btn.click();
  const r = await rec.until(() => rec.find(
    (x) => x.method === "device.pair.approve" && x.res), TIMEOUT,
  "the device.pair.approve answer");
  await rec.settle(rec.bucket, 800, 5000);
  await shot(page, "devices-approved");
  emit({ event: "done", approve: { params: r.params, ok: r.res.ok,
                                   error: r.res.error || null } });
}

// In-app navigation: the router listens to history changes.
async function navigate(page, p) {
  await page.evaluate((to) => {
    window.history.pushState({}, "", to);
    window.dispatchEvent(new PopStateEvent("popstate", { state: {} }));
  }, p);
}

async function scenarioRecord(page, rec) {
  await gotoApp(page, "/");
  await waitConnected(rec);
  await rec.settle("startup");
  await shot(page, "view-startup");
  const views = {};
  views.startup = { path: "/" };
  const only = opts.views || Object.keys(VIEWS);
  for (const name of only) {
    rec.bucket = name;
    await navigate(page, VIEWS[name]);
    await rec.settle(name);
    await shot(page, "view-" + name);
    views[name] = { path: VIEWS[name],
                    location: await page.evaluate(() => location.pathname),
                    text: (await page.innerText("body")).slice(0, 8000) };
  }
  // Polls sent late are still in flight: let them be answered (bounded),
  // then count.
  await rec.until(() => ![...rec.reqs.values()].some((r) => !r.res), 10000,
                  "the last answers").catch(() => {});
  for (const name of Object.keys(views))
    views[name].methods = rec.summary(name);
  emit({ event: "done", views, http: rec.http });
}

async function scenarioSecrets(page, rec) {
  await gotoApp(page, "/settings/secrets");
  await waitConnected(rec);
  rec.bucket = "secrets";
  const listed = () => rec.find((r) => r.method === "secrets.store.list" &&
                                r.res && r.res.ok);
  // The first list may have been sent before the bucket switch.
  await rec.until(listed, TIMEOUT, "the secrets.store.list answer");
  const table = page.locator("table").first();
  let set = null;
  if (opts.set) {
    const add = page.locator("button.btn--sm.primary",
                             { hasText: "Add" }).first();
    await add.waitFor({ state: "visible", timeout: TIMEOUT });
    await add.click();
    const form = page.locator("form.secrets-store-dialog");
    await form.waitFor({ state: "visible", timeout: TIMEOUT });
    await form.locator('input[name="name"]').fill(opts.set.name);
    await form.locator('textarea[name="value"]').fill(opts.set.value);
    await form.locator('input[name="access-mode"][value="secret"]').check();
    await shot(page, "secrets-dialog");
    const before = rec.reqs.size;
    await form.locator('button[type="submit"]').click();
    const r = await rec.until(() => rec.find(
      (x) => x.method === "secrets.store.set" && x.res), TIMEOUT,
    "the secrets.store.set answer");
    set = { params: { name: r.params.name, kind: r.params.kind },
            ok: r.res.ok, error: r.res.error || null };
    // The page lists again after a write.
    await rec.until(() => [...rec.reqs.entries()].some(
      ([, x], i) => x.method === "secrets.store.list" && x.res &&
        x.at >= r.at), TIMEOUT, "the list after the set");
    void before;
    await page.waitForFunction((n) => document.body.innerText.includes(n),
                               opts.set.name, { timeout: TIMEOUT });
  } else {
    await table.waitFor({ state: "visible", timeout: TIMEOUT })
      .catch(() => {});
  }
  await rec.settle("secrets", 800, 5000);
  await shot(page, "secrets");
  const methods = {};
  for (const r of rec.reqs.values()) {
    if (r.method === "connect") continue;
    const m = methods[r.method] || (methods[r.method] = { sent: 0, failed: 0 });
    m.sent++;
    if (r.res && !r.res.ok) {
      m.failed++;
      m.error = r.res.error;
    }
  }
  emit({ event: "done", methods, set, http: rec.http,
         text: await page.innerText("body"),
         html: await page.content() });
}

async function scenarioDmPairing(page, rec) {
  await gotoApp(page, "/settings/channels");
  await waitConnected(rec);
  const listed = () => rec.find((r) => r.method === "channels.pairing.list" &&
    r.res && r.res.ok && (r.res.payload.requests || []).some(
      (q) => q.senderId.startsWith(opts.sender)));
  const l = await rec.until(listed, TIMEOUT,
                            "channels.pairing.list with the request");
  const req = l.res.payload.requests.find(
    (q) => q.senderId.startsWith(opts.sender));
  // The request's row: its Approve button is labelled with the sender.
  const btn = page.locator(
    `button[aria-label^="Approve ${req.senderId} for"]`).first();
  await btn.waitFor({ state: "visible", timeout: TIMEOUT });
  const row = page.locator(".channels-pairing-request",
                           { has: btn }).first();
  const rowText = await row.innerText();
  await btn.scrollIntoViewIfNeeded();
  await shot(page, "dmpairing-pending");
  await btn.click();
  const dialog = page.locator(".channels-pairing-dialog").first();
  await dialog.waitFor({ state: "visible", timeout: TIMEOUT });
  const dialogText = await dialog.innerText();
  await shot(page, "dmpairing-dialog");
  await dialog.locator("button.primary").click();
  const r = await rec.until(() => rec.find(
    (x) => x.method === "channels.pairing.approve" && x.res), TIMEOUT,
  "the channels.pairing.approve answer");
  // The page lists again after the approval; the row goes away.
  await rec.until(() => rec.find(
    (x) => x.method === "channels.pairing.list" && x.res &&
      x.at >= r.at), TIMEOUT, "the list after the approval");
  await btn.waitFor({ state: "detached", timeout: TIMEOUT });
  await rec.until(() => ![...rec.reqs.values()].some((x) => !x.res), 10000,
                  "the last answers").catch(() => {});
  await shot(page, "dmpairing-approved");
  const methods = {};
  for (const x of rec.reqs.values()) {
    if (x.method === "connect") continue;
    const m = methods[x.method] || (methods[x.method] = { sent: 0, failed: 0 });
    m.sent++;
    if (x.res && !x.res.ok) {
      m.failed++;
      m.error = x.res.error;
    }
  }
  emit({ event: "done", request: req, rowText, dialogText, methods,
         http: rec.http,
         approve: { params: r.params, ok: r.res.ok,
                    payload: r.res.payload || null,
                    error: r.res.error || null },
         text: (await page.innerText("body")).slice(0, 8000) });
}

const SCENARIOS = {
  connect: scenarioConnect,
  pairing: scenarioPairing,
  approve: scenarioApprove,
  record: scenarioRecord,
  secrets: scenarioSecrets,
  dmpairing: scenarioDmPairing,
};

async function main() {
  const fn = SCENARIOS[scenario];
  if (!fn) throw new Error("unknown scenario " + scenario);
  const browser = await chromium.launch({
    executablePath: opts.chromium || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  try {
    const ctx = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      // e.g. X-Forwarded-For: a browser the gateway sees as remote
      extraHTTPHeaders: opts.headers || {},
    });
    const page = await ctx.newPage();
    const rec = new Recorder(page);
    try {
      await fn(page, rec);
    } catch (e) {
      await shot(page, "error-" + scenario);
      const text = await page.innerText("body").catch(() => "");
      e.message += "\npage text: " + text.slice(0, 3000);
      throw e;
    }
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (e) => {
  emit({ event: "error", message: String(e && e.stack || e) });
  process.exit(1);
});
