// node http-probe.mjs PORT COUNT — sends COUNT sequential GETs to 127.0.0.1:PORT (keep-alive)
// and prints one JSON line: {"statuses": {...}, "apps": {...}}. Used inside network namespaces.
import http from 'node:http';

const [port, count] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true });
const out = { statuses: {}, apps: {} };
for (let i = 0; i < count; i++) {
  const r = await new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        let app = '-';
        try {
          app = JSON.parse(body).app ?? '-';
        } catch {
          // not JSON: no app name to report
        }
        resolve({ status: String(res.statusCode), app });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: `error:${e.message}`, app: '-' }));
  });
  out.statuses[r.status] = (out.statuses[r.status] ?? 0) + 1;
  out.apps[r.app] = (out.apps[r.app] ?? 0) + 1;
}
agent.destroy();
console.log(JSON.stringify(out));
