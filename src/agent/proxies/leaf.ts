/**
 * Leaf certificates for local services: the key and CSR are made here on the host, the
 * registry signs (only for a service registered on this node), and the pair is kept under
 * the data dir so a restart with the registry down still has a valid certificate.
 * Renewed at half-life.
 */
import { readFile, rm } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { createKeyAndCsr, renewalDue, serviceId } from '../../ca/index.js';
import { ensurePrivateDir, writeFileAtomic } from '../../util/fs.js';
import type { RegistryLink } from '../registry-link.js';

export interface Leaf {
  certPem: string;
  keyPem: string;
  rootsPem: string[];
  notBefore: number;
  notAfter: number;
}

export class LeafStore {
  readonly #dir: string;
  readonly #link: RegistryLink;
  readonly #trustDomain: string;
  readonly #ttlSeconds: number | undefined;

  constructor(dir: string, link: RegistryLink, trustDomain: string, ttlSeconds?: number) {
    this.#dir = dir;
    this.#link = link;
    this.#trustDomain = trustDomain;
    this.#ttlSeconds = ttlSeconds;
  }

  #paths(id: string) {
    const d = join(this.#dir, id);
    return { dir: d, key: join(d, 'leaf.key'), cert: join(d, 'leaf.pem'), roots: join(d, 'roots.pem') };
  }

  /** The stored leaf, if any (valid or not). */
  async load(id: string): Promise<Leaf | undefined> {
    const p = this.#paths(id);
    try {
      const [certPem, keyPem, roots] = await Promise.all([
        readFile(p.cert, 'utf8'),
        readFile(p.key, 'utf8'),
        readFile(p.roots, 'utf8'),
      ]);
      const x = new X509Certificate(certPem);
      return {
        certPem,
        keyPem,
        rootsPem: splitPem(roots),
        notBefore: Date.parse(x.validFrom),
        notAfter: Date.parse(x.validTo),
      };
    } catch {
      return undefined;
    }
  }

  /** True when the leaf is missing or past half-life (src/ca/renewal.ts). */
  static due(leaf: Leaf | undefined, now = Date.now()): boolean {
    return renewalDue(leaf, now);
  }

  /** Makes a new key + CSR here and has the registry sign it. */
  async issue(id: string, service: string): Promise<Leaf> {
    const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: serviceId(this.#trustDomain, service) });
    const res = await this.#link.call((c) => c.sign(service, csrPem, this.#ttlSeconds));
    const p = this.#paths(id);
    await ensurePrivateDir(p.dir);
    await writeFileAtomic(p.key, keyPem, 0o600);
    await writeFileAtomic(p.cert, res.certificate, 0o600);
    await writeFileAtomic(p.roots, res.roots.join(''), 0o600);
    return {
      certPem: res.certificate,
      keyPem,
      rootsPem: res.roots,
      notBefore: Date.parse(res.notBefore),
      notAfter: Date.parse(res.notAfter),
    };
  }

  async remove(id: string): Promise<void> {
    await rm(this.#paths(id).dir, { recursive: true, force: true });
  }
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}
