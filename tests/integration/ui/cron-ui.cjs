// Drive the real OpenClaw Control UI's Automations view against a gateway
// (test_peer_cron.py): headless Chromium via playwright-core, the UI's
// files served from ROOT by request interception (no web server). Prints
// one JSON line: {cron: [{method, ok, error?}], sawJob, sawRun}.
//   node cron-ui.cjs GW_URL TOKEN JOB_NAME
const path = require('path'), fs = require('fs');
const PEER = process.env.CLAWGATE_PEER_DIR;
const { chromium } = require(path.join(PEER, 'node_modules', 'playwright-core'));
const ROOT = path.join(PEER, 'node_modules', 'openclaw', 'dist', 'control-ui');
const [gw, token, jobName] = process.argv.slice(2);
const ORIGIN = 'http://127.0.0.1:9';   // never contacted: all fulfilled here
const TYPES = { '.js': 'application/javascript', '.css': 'text/css',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json',
  '.woff2': 'font/woff2', '.webmanifest': 'application/manifest+json' };

(async () => {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests'] });
  const page = await browser.newPage();
  const reqs = {}, cron = [];
  let resolveRuns;
  const runsSeen = new Promise(r => { resolveRuns = r; });
  page.on('websocket', ws => {
    ws.on('framesent', f => { try { const m = JSON.parse(f.payload); if (m.type === 'req') reqs[m.id] = m; } catch (e) {} });
    ws.on('framereceived', f => {
      let m; try { m = JSON.parse(f.payload); } catch (e) { return; }
      if (m.type !== 'res' || !reqs[m.id] || !reqs[m.id].method.startsWith('cron.')) return;
      cron.push({ method: reqs[m.id].method, ok: m.ok, error: m.error });
      if (reqs[m.id].method === 'cron.runs' && m.ok && (m.payload.entries || []).length) resolveRuns();
    });
  });
  await page.route(ORIGIN + '/**', route => {
    const u = new URL(route.request().url());
    let file = path.join(ROOT, path.normalize(u.pathname));
    if (!file.startsWith(ROOT) || !fs.existsSync(file) || fs.statSync(file).isDirectory())
      file = path.extname(u.pathname) ? null : path.join(ROOT, 'index.html');
    if (!file) return route.fulfill({ status: 404, body: 'Not Found' });
    route.fulfill({ status: 200, body: fs.readFileSync(file),
      contentType: TYPES[path.extname(file)] || 'text/html' });
  });
  await page.goto(`${ORIGIN}/automations#gatewayUrl=${encodeURIComponent(gw)}&token=${encodeURIComponent(token)}`);
  let sawJob = false, sawRun = false;
  try {
    // The URL names another gateway than the page's origin: the UI asks
    // "Switch to a different Gateway?" first.
    const sw = page.getByRole('button', { name: /^Switch to / });
    const job = page.getByText(jobName, { exact: true }).first();
    await Promise.race([sw.first().waitFor({ timeout: 30000 }), job.waitFor({ timeout: 30000 })]);
    if (await sw.count()) await sw.first().click();
    await job.waitFor({ timeout: 30000 });
    sawJob = true;
    await page.getByText(jobName, { exact: true }).first().click();
    await page.getByRole('tab', { name: /Run history/ }).first().click();
    await Promise.race([runsSeen, new Promise((_, j) => setTimeout(() => j(new Error('no runs')), 20000))]);
    sawRun = true;
  } catch (e) {
    console.error(String(e));
  }
  console.log(JSON.stringify({ cron, sawJob, sawRun }));
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
