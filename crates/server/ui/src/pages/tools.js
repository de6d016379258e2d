// Tools: what exists now (API links, version, who is signed in) and, honestly marked,
// what arrives with the operations issue.
import * as API from '../api.js';
import { html, Coming, useLoad, fmtDuration } from '../ui.js';
import { SoftwareUpdate } from './tools_update.js';

const LINKS = [
  ['/api/v1/openapi.json', 'OpenAPI document'],
  ['/metrics', 'Prometheus metrics'],
  ['/sysmaster/status', '/sysmaster/status'],
  ['/plain/list', '/plain/list'],
];

export function Tools({ me, hostname }) {
  const [sys] = useLoad(() => API.system(), []);
  return html`<div>
    <h1>Tools</h1>
    <section class="panel">
      <h2>This appliance</h2>
      <table class="kv"><tbody>
        <tr><td>Hostname</td><td class="mono">${hostname}</td></tr>
        <tr><td>Software</td><td class="mono" data-test="version">${sys ? `wirecap ${sys.version}` : '…'}</td></tr>
        ${sys && sys.uptime_s !== undefined && html`<tr><td>Server up for</td><td>${fmtDuration(sys.uptime_s)}</td></tr>`}
        <tr><td>Signed in as</td><td class="mono">${me.user}${me.role ? ` (${me.role})` : ''}</td></tr>
        <tr><td>HTTP API</td><td>${LINKS.map(([href, label], i) => html`${i ? ' · ' : ''}<a href=${href} target="_blank">${label}</a>`)}</td></tr>
      </tbody></table>
    </section>
    <${Coming} title="System report" issue="8">One click builds a report archive (logs, configuration, counters,
      stream index) with progress, then offers it for download, as on the appliance's Tools page.<//>
    <${Coming} title="Hostname" issue="8">Change the appliance's hostname from here. Today it is set on the host
      itself; the title of every page shows it.<//>
    <${Coming} title="Users" issue="8">Add and remove users and change passwords (argon2 hashes in <code>users.json</code>). Today the <code>admin</code> user is created on first start.<//>
    <${SoftwareUpdate} admin=${me.role === 'admin'} />
  </div>`;
}
