// Browser test of the operators' pages (issue 14): API tokens on the Tools page, alerts on
// the Config page. The real `wirecap serve` (synthetic source, plain HTTP on 127.0.0.1),
// Debian's chromium driven by playwright-core, headless. Small and separate from
// browser.mjs (which imports 1,000 streams first).
//
//   node crates/http/ui/tests/ops.mjs /path/to/wirecap
//
// Environment: WIRECAP_BIN (instead of the argument), WIRECAP_UI_ARTIFACTS (screenshots),
// CHROMIUM (default /usr/bin/chromium). Ends with "ops: N passed, N failed".
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import { freePort, launchChromium, sleep, startServer, stopServer } from './harness.mjs';

const BIN = process.env.WIRECAP_BIN || process.argv[2];
if (!BIN) {
  console.error('usage: node ops.mjs /path/to/wirecap (or WIRECAP_BIN)');
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const OUT = process.env.WIRECAP_UI_ARTIFACTS || mkdtempSync(join(tmpdir(), 'wirecap-ops-ui-'));
mkdirSync(OUT, { recursive: true });
const DATA = mkdtempSync(join(tmpdir(), 'wirecap-ops-data-'));
const PASSWORD = 'ops-test-password';
const results = [];
let shot = async () => {};

function expect(cond, msg) { if (!cond) throw new Error(msg); }
async function check(name, f) {
  const t0 = Date.now();
  try {
    await f();
    results.push(true);
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push(false);
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    await shot(`ops-fail-${results.length}`).catch(() => {});
  }
}

async function main() {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer({
    bin: BIN, data: DATA, port, password: PASSWORD, extra: ['--synthetic', '200'], logFile: join(OUT, 'ops-server.log'),
  });
  let browser = null;
  const stop = async () => {
    if (browser) await browser.close().catch(() => {});
    await stopServer(server.srv);
    rmSync(DATA, { recursive: true, force: true });
  };
  try {
    browser = await launchChromium(CHROMIUM);
    const page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
    shot = (name) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });

    await check('sign in', async () => {
      await page.goto(base);
      await page.fill('#user', 'admin');
      await page.fill('#password', PASSWORD);
      await page.click('button[type=submit]');
      await page.waitForSelector('main h1:text("Dashboard")');
    });

    let secret = null;
    await check('tools: an API token is made and its secret shown once', async () => {
      await page.goto(`${base}/#/tools`);
      await page.waitForSelector('[data-test=tokens-panel] [data-test=no-tokens]');
      await page.fill('[data-test=token-name]', 'nightly');
      await page.selectOption('[data-test=token-role]', 'viewer');
      await page.click('[data-test=token-create]');
      await page.waitForSelector('[data-test=token-secret]');
      secret = (await page.textContent('[data-test=token-secret]')).trim();
      expect(/^wct_[A-Za-z0-9_-]{43}$/.test(secret), `secret ${secret}`);
      await page.waitForSelector('[data-test=tokens] tr[data-token=nightly]');
      expect((await page.textContent('[data-test=tokens] tr[data-token=nightly]')).includes('viewer'), 'role not listed');
      await shot('ops-01-token-made');
      // Not in the list's answer: the secret is shown this once.
      const listed = await page.evaluate(async () => (await fetch('/api/v1/tokens', { headers: { 'X-Wirecap-UI': '1' } })).text());
      expect(!listed.includes('wct_'), `the list holds a secret: ${listed}`);
    });

    await check('a script uses the token (Bearer) with its role; last use is shown', async () => {
      const bearer = { Authorization: `Bearer ${secret}` };
      const st = await fetch(`${base}/sysmaster/status`, { headers: bearer });
      expect(st.ok && (await st.text()).includes('capture_active'), `status with the token: ${st.status}`);
      const stop = await fetch(`${base}/api/v1/capture/stop`, { method: 'POST', headers: { ...bearer, 'Content-Type': 'application/json' }, body: '{}' });
      expect(stop.status === 403, `a viewer token stopped the capture: ${stop.status}`);
      await page.reload();
      await page.waitForFunction(() => {
        const td = document.querySelector('[data-test=tokens] tr[data-token=nightly] [data-test=token-last-used]');
        return td && /^\d{4}-\d\d-\d\dT/.test(td.textContent.trim());
      });
    });

    await check('revoking asks, then the token is refused', async () => {
      await page.click('[data-test=revoke-nightly]');
      await page.waitForSelector('[role=dialog]');
      await page.click('[role=dialog] button:text("Revoke")');
      await page.waitForSelector('[data-test=tokens-msg]:has-text("Revoked nightly")');
      const r = await fetch(`${base}/api/v1/status`, { headers: { Authorization: `Bearer ${secret}` } });
      expect(r.status === 401, `revoked token answered ${r.status}`);
      await shot('ops-02-token-revoked');
    });

    await alertsChecks(page, base);
  } finally {
    await stop();
  }
  const passed = results.filter((r) => r).length;
  const failed = results.length - passed;
  console.log(`screenshots: ${OUT}`);
  console.log(`ops: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

/** Alerts on the Config page: set a syslog (UDP) target, send a test, see it arrive. */
async function alertsChecks(page, base) {
  // A UDP syslog receiver on 127.0.0.1.
  const sock = dgram.createSocket('udp4');
  const got = [];
  sock.on('message', (m) => got.push(m.toString()));
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const udpPort = sock.address().port;
  try {
    await check('config: alerts are set and a test alert reaches syslog', async () => {
      await page.goto(`${base}/#/config`);
      await page.waitForSelector('[data-test=alerts-syslog]');
      await page.fill('[data-test=alerts-syslog]', `udp://127.0.0.1:${udpPort}`);
      await page.fill('[data-test=alerts-drops]', '5');
      await page.click('[data-test=alerts-save]');
      await page.waitForSelector('[data-test=alerts-msg]:has-text("saved")');
      await page.click('[data-test=alerts-test]');
      const testMsg = () => got.find((m) => m.includes('test alert'));
      for (let i = 0; i < 50 && !testMsg(); i++) await sleep(100);
      expect(testMsg(), `no test alert arrived: ${JSON.stringify(got)}`);
      expect(/^<\d+>1 \S+ \S+ wirecap /.test(testMsg()), `not RFC 5424: ${testMsg()}`);
      await page.waitForSelector('[data-test=alerts-msg]:has-text("sent")');
      await page.reload();
      await page.waitForSelector('[data-test=alerts-syslog]');
      expect(await page.inputValue('[data-test=alerts-drops]') === '5', 'drops threshold not kept');
      const v = await page.inputValue('[data-test=alerts-syslog]');
      expect(v === `udp://127.0.0.1:${udpPort}`, `kept: ${v}`);
      await shot('ops-03-alerts');
    });
  } finally {
    sock.close();
  }
}

main().catch((e) => {
  console.error(e);
  console.log('ops: 0 passed, 1 failed');
  process.exit(1);
});
