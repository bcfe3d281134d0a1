/**
 * Which pages of the node binary a running process has resident, by ELF section and by what
 * the symbol there belongs to (TurboFan, WebAssembly, OpenSSL, ICU data, …): the file-backed
 * part of a proxy's RSS (RssFile), which no setting of the proxy's own can give back. Reads
 * /proc/PID/maps and the present bits of /proc/PID/pagemap (no privilege needed for those),
 * and the binary's symbols with `nm` and sections with `readelf` (binutils). Linux only.
 *
 *   node bench/rss-pages.mjs PID [--top N]
 *
 * E.g. a bare `node -e 'setTimeout(() => {}, 1e5)'` against a proxy at 1,000 req/s
 * (docs/BENCHMARKS.md "RSS": the floor at the rate).
 */
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, realpathSync } from 'node:fs';
import { parseArgs } from 'node:util';

const PAGE = 4096;

/** What a symbol's code or data belongs to, from its (mangled) name. */
export function family(name) {
  if (name.startsWith('icudt')) return 'ICU data';
  if (/^_ZN2v88internal8compiler|^_ZN2v88internal\d+Turbo/.test(name)) return 'V8 TurboFan';
  if (/^_ZN2v88internal4wasm|^_ZN2v88internal\d*Wasm|^wasm_/.test(name)) return 'V8 WebAssembly';
  if (name.startsWith('Builtins_')) return 'V8 embedded builtins';
  if (name.startsWith('_ZN2v8')) return 'V8 other';
  if (/^_ZN6icu_\d+|^u(loc|res|data|cal|str|set|prop|case|norm|trie|enum|list)_/.test(name)) return 'ICU code';
  if (/^_ZN4node|^_ZN3ada|^_ZN7simdutf|^uv_|^llhttp|^nghttp2|^ares|^brotli|^Brotli|^zlib|^deflate|^inflate/.test(name))
    return 'node, libuv, bundled C libraries';
  if (
    /^(EVP|SSL|ssl|X509|x509|BN_|bn_|EC_|ec_|ecp_|ossl|OSSL|OPENSSL|CRYPTO|RSA|ASN1|asn1|tls|aes|AES|sha|SHA|x25519|X25519|ChaCha|Poly|OBJ_|nid_|ERR_|PEM|BIO|HMAC|EVP_|kdf|rsa|dh|DH|gcm|CRYPTO)/.test(
      name,
    )
  )
    return 'OpenSSL';
  return 'other';
}

function sections(binary) {
  const out = [];
  for (const line of execFileSync('readelf', ['-SW', binary], { encoding: 'utf8' }).split('\n')) {
    const m = /\]\s+(\S+)\s+\S+\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)/.exec(line);
    if (!m) continue;
    const addr = parseInt(m[2], 16);
    if (addr === 0) continue;
    out.push({ name: m[1], addr, size: parseInt(m[4], 16) });
  }
  return out.sort((a, b) => a.addr - b.addr);
}

function symbols(binary) {
  const out = [];
  const text = execFileSync('nm', ['-S', '--defined-only', binary], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  for (const line of text.split('\n')) {
    const p = line.split(' ');
    if (p.length < 4) continue;
    const addr = parseInt(p[0], 16);
    const size = parseInt(p[1], 16);
    if (!(size > 0) || addr === 0) continue;
    out.push({ addr, size, name: p.slice(3).join(' ') });
  }
  return out.sort((a, b) => a.addr - b.addr);
}

function find(sorted, addr) {
  let lo = 0;
  let hi = sorted.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid].addr <= addr) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best < 0 ? undefined : sorted[best];
}

/**
 * @param {number} pid
 * @returns {{ binary: string, totalKb: number, bySection: Map<string, number>, byFamily: Map<string, number>, bySymbol: Map<string, number> }}
 */
export function residentPages(pid) {
  const binary = realpathSync(`/proc/${pid}/exe`);
  const maps = [];
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const p = line.trim().split(/\s+/);
    if (p.length < 6 || p[5] !== binary) continue;
    const [lo, hi] = p[0].split('-').map((x) => parseInt(x, 16));
    maps.push({ lo, hi, offset: parseInt(p[2], 16) });
  }
  const secs = sections(binary);
  const syms = symbols(binary);
  // Where file offset 0 is mapped in the binary's own address layout (its first PT_LOAD).
  const base = maps.length ? maps.reduce((a, m) => (m.offset === 0 ? m.lo : a), maps[0].lo - maps[0].offset) : 0;
  const bySection = new Map();
  const byFamily = new Map();
  const bySymbol = new Map();
  const add = (m, k) => m.set(k, (m.get(k) ?? 0) + PAGE / 1024);
  let totalKb = 0;
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  try {
    for (const m of maps) {
      const pages = (m.hi - m.lo) / PAGE;
      const own = Math.abs(m.lo - (base + m.offset)) < 1 << 20;
      const buf = Buffer.alloc(pages * 8);
      readSync(fd, buf, 0, buf.length, (m.lo / PAGE) * 8);
      for (let i = 0; i < pages; i++) {
        if (buf.readBigUInt64LE(i * 8) >> 63n === 0n) continue;
        totalKb += PAGE / 1024;
        // The binary's own address of this page: V8 maps its embedded builtins a second time
        // elsewhere (near its code space); the file offset says what they are.
        const addr = (own ? m.lo : base + m.offset) + i * PAGE;
        const sec = find(secs, addr);
        const secName = sec && addr < sec.addr + Math.max(sec.size, PAGE) ? sec.name : 'other';
        add(bySection, own ? secName : `${secName} (mapped again)`);
        const sym = find(syms, addr);
        const inSym = sym && addr < sym.addr + Math.max(sym.size, PAGE);
        add(byFamily, inSym ? family(sym.name) : `no symbol (${secName})`);
        if (inSym) add(bySymbol, sym.name);
      }
    }
  } finally {
    closeSync(fd);
  }
  return { binary, totalKb, bySection, byFamily, bySymbol };
}

function main() {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string' } } });
  const pid = Number(positionals[0]);
  if (!Number.isInteger(pid) || pid <= 0) {
    process.stderr.write('usage: node bench/rss-pages.mjs PID [--top N]\n');
    process.exit(2);
  }
  let r;
  try {
    r = residentPages(pid);
  } catch (e) {
    process.stderr.write(`error: cannot read process ${pid}'s pages: ${e instanceof Error ? e.message : e}\n`);
    process.exit(1);
  }
  const mb = (kb) => (kb / 1024).toFixed(2).padStart(7);
  const rows = (m, n = Infinity) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `${mb(v)} MB  ${k}\n`)
      .join('');
  let out = `${r.binary}: ${mb(r.totalKb)} MB resident in process ${pid}\n\n`;
  out += `by section\n${rows(r.bySection)}\nby what the symbol belongs to\n${rows(r.byFamily)}`;
  if (values.top) out += `\nlargest symbols\n${rows(r.bySymbol, Number(values.top))}`;
  // A reader that stops early (| head) is not an error.
  process.stdout.on('error', () => {});
  process.stdout.write(out);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
