// What the browser tests (browser.mjs, ops.mjs) share: a free port on 127.0.0.1, a
// `wirecap serve` child that is waited for until it answers, and Debian's chromium.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * Starts `bin serve --data data --http 127.0.0.1:port ...extra` with the admin password
 * `password` and resolves once it answers: `{ srv, auth, log }` (Basic credentials of the
 * admin; the output so far). The output is written to `logFile` when the server exits.
 */
export async function startServer({ bin, data, port, password, extra, logFile }) {
  const srv = spawn(bin, ['serve', '--data', data, '--http', `127.0.0.1:${port}`, ...extra], {
    env: { ...process.env, WIRECAP_ADMIN_PASSWORD: password },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  srv.stdout.on('data', (d) => { text += d; });
  srv.stderr.on('data', (d) => { text += d; });
  srv.on('exit', () => writeFileSync(logFile, text));
  const auth = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
  for (let i = 0; i < 150; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/v1/status?history=0`, { headers: { Authorization: auth } });
      if (r.ok) return { srv, auth, log: () => text };
    } catch { /* not listening yet */ }
    if (srv.exitCode !== null) throw new Error(`wirecap serve exited ${srv.exitCode}:\n${text}`);
    await sleep(200);
  }
  throw new Error(`wirecap serve did not answer in 30 s:\n${text}`);
}

/** SIGTERM to the server and wait until it has exited (it seals its capture). */
export async function stopServer(srv) {
  srv.kill('SIGTERM');
  await new Promise((r) => (srv.exitCode !== null ? r() : srv.on('exit', r)));
}

/** Headless chromium at `executablePath` (playwright gives it a fresh profile folder). */
export function launchChromium(executablePath) {
  return chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}
