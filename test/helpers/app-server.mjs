// A tiny HTTP app for tests that run it as its own process (e.g. inside a network namespace):
// node app-server.mjs ADDRESS PORT NAME — answers {"app": NAME, "path": ...}; prints "listening" when ready.
import http from 'node:http';

const [address, port, name] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ app: name, path: req.url, traceparent: req.headers.traceparent ?? null }));
});
server.listen(Number(port), address, () => console.log(`listening ${address}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
