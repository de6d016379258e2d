// Browser checks of the Flows page, run by browser.mjs on its server and data: the
// "hour" stream (2025-01-01T00:00:00Z, 3,600 s at 2 packets/s) is alone in 00:10-00:20.
import { join } from 'node:path';

const START = '2025-01-01T00:10:00Z';
const STOP = '2025-01-01T00:20:00Z';
const FILTER = 'ip or ip6';

export async function flowsChecks({ check, expect, page, base, shot, out, tcpdumpCount, num, run, bin, store, auth }) {
  const hourName = run(bin, ['list', '--data', store]).split('\n').map((l) => l.split('\t')[0]).find((n) => n.startsWith('hour_'));
  const rows = 'table[data-test=flows] tbody tr[data-packets]';
  const column = (attr) => page.$$eval(rows, (trs, a) => trs.map((tr) => Number(tr.getAttribute(a))), attr);
  // Does `action` and waits until the page rendered the answer to the question the URL
  // now asks (URL parameters in the order the page asks them).
  const rerender = async (action) => {
    await action();
    await page.waitForFunction(() => {
      const r = window.__wirecapRendered;
      if (!r || r.page !== 'flows' || !r.question) return false;
      const url = new URLSearchParams(location.hash.split('?')[1] || '');
      const asked = new URLSearchParams(r.question);
      return ['start', 'stop', 'filter', 'bpf', 'cursor'].every((k) => (url.get(k) || '') === (asked.get(k) || ''))
        && (url.get('sort') || 'start') === asked.get('sort');
    }, null, { timeout: 20000 });
  };

  await check('flows: in the menu; a range and a filter list flows as the API does; all matching packets download as one pcap', async () => {
    await page.goto(`${base}/#/dashboard`);
    await page.click('nav a[href="#/flows"]');
    await page.waitForSelector('[data-test=flows-form]');
    // Without a range in the URL the page asks for the newest stream's last hour.
    await page.waitForFunction(() => /start=.*stop=/.test(location.hash));
    await rerender(() => page.goto(`${base}/#/flows?start=${START}&stop=${STOP}`));
    expect(await page.inputValue('[data-test=flows-start]') === START, 'the form does not show the range');
    await page.selectOption('[data-test=flows-lang]', 'bpf');
    await page.fill('[data-test=flows-filter]', FILTER);
    await page.waitForFunction(() => !document.querySelector('[data-test=flows-search]').disabled);
    await rerender(() => page.click('[data-test=flows-search]'));
    await page.waitForSelector(rows);
    // The page shows what the API answers for the same question.
    const q = new URLSearchParams({ start: START, stop: STOP, bpf: FILTER, sort: 'start', limit: '100' });
    const api = await (await fetch(`${base}/api/v1/flows?${q}`, { headers: { Authorization: auth } })).json();
    const stats = await page.$$eval('[data-test=flows-totals] .stat .v', (vs) => vs.map((v) => v.textContent));
    expect(num(stats[0]) === api.total && num(stats[1]) === api.packets, `stats ${stats} vs API ${api.total} flows, ${api.packets} packets`);
    const firsts = await column('data-first');
    expect(JSON.stringify(firsts) === JSON.stringify(api.flows.map((f) => f.first_ns)), 'rows differ from the API page');
    expect(api.total > 50, `only ${api.total} flows`);
    await shot('13-flows');
    // All matching packets: exactly what tcpdump selects from the stream's export of the range.
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-test=flows-download-all]')]);
    const file = join(out, 'flows-all.pcap');
    await dl.saveAs(file);
    const whole = join(out, 'hour-range.pcap');
    run(bin, ['export', '--data', store, hourName, '--start', START, '--stop', STOP, '-o', whole]);
    const want = tcpdumpCount(whole, [FILTER]);
    const got = tcpdumpCount(file);
    expect(got === want && got > 500, `the search download holds ${got} packets, tcpdump selects ${want}`);
  });

  await check('flows: sorted by a column, paged by cursor', async () => {
    await rerender(() => page.click('th a[data-sort=bytes]'));
    expect(page.url().includes('sort=-bytes'), `sorted by ${page.url()}`);
    await page.waitForFunction(() => document.querySelector('th a[data-sort=bytes]').textContent.includes('▼'));
    const bytes = await column('data-bytes');
    expect(bytes.length > 1 && bytes.every((b, i) => i === 0 || bytes[i - 1] >= b), `not by bytes, descending: ${bytes.slice(0, 10)}`);
    const total = await page.evaluate(() => window.__wirecapRendered.total);
    if (total > 100) {
      const first = await column('data-first');
      await rerender(() => page.click('button[aria-label="next page"]'));
      expect(page.url().includes('cursor='), 'no cursor in the URL');
      await page.waitForFunction(() => /^101/.test(document.querySelector('[data-test=flows-page]').textContent));
      const second = await column('data-bytes');
      expect(second[0] <= bytes[bytes.length - 1], 'the next page does not continue the order');
      await rerender(() => page.click('button[aria-label="previous page"]'));
      await page.waitForFunction(() => /^1–/.test(document.querySelector('[data-test=flows-page]').textContent));
      const again = await column('data-first');
      expect(JSON.stringify(again) === JSON.stringify(first), 'previous page is not the first page');
    }
    // Ascending by start on a second click of the start column.
    await rerender(() => page.click('th a[data-sort=start]'));
    expect(/sort=start(&|$)/.test(page.url()), `sorted by ${page.url()}`);
    await page.waitForFunction(() => document.querySelector('th a[data-sort=start]').textContent.includes('▲'));
    const starts = await column('data-first');
    expect(starts.every((s, i) => i === 0 || starts[i - 1] <= s), 'not by start');
  });

  await check("flows: a flow's pcap holds exactly its packets", async () => {
    const want = (await column('data-packets'))[0];
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`${rows}:first-child [data-test=flow-pcap]`)]);
    const file = join(out, 'flow-1.pcap');
    await dl.saveAs(file);
    const got = tcpdumpCount(file);
    expect(got === want, `the row says ${want} packets, its pcap holds ${got}`);
  });

  await check("flows: from a flow to its time window on the Files page", async () => {
    const first = (await column('data-first'))[0];
    await page.click(`${rows}:first-child [data-test=flow-files]`);
    await page.waitForSelector('[data-test=time-window]');
    const url = page.url();
    expect(url.includes('#/files/hour_') && url.includes(`start=${first}`), `went to ${url}`);
    const link = await page.getAttribute('[data-test=download-window]', 'href');
    expect(link.includes(`start=${first}`), `window download ${link}`);
    await shot('14-flow-window');
  });

  await check('flows: a bad filter is shown inline where it is wrong, and cannot be searched', async () => {
    await rerender(() => page.goto(`${base}/#/flows?start=${START}&stop=${STOP}&bpf=tcp`));
    await page.fill('[data-test=flows-filter]', 'tcp prt 80');
    const err = page.locator('[data-test=flows-form] [data-test=filter-error]');
    await err.waitFor();
    const t = await err.textContent();
    const caret = t.split('\n')[1];
    expect(caret && caret.indexOf('^') > 0, `caret: ${JSON.stringify(t)}`);
    expect(await page.isDisabled('[data-test=flows-search]'), 'search is not disabled with a bad filter');
    await page.selectOption('[data-test=flows-lang]', 'filter');
    await page.fill('[data-test=flows-filter]', 'x: tcp.prot == 80; x');
    await page.waitForFunction(() => /unknown field/i.test(document.querySelector('[data-test=flows-form] [data-test=filter-error]')?.textContent || ''));
    await shot('15-flows-bad-filter');
    await page.fill('[data-test=flows-filter]', 'x: tcp.port == 80; x');
    await page.waitForSelector('[data-test=flows-form] [data-test=filter-error]', { state: 'detached' });
  });
}
