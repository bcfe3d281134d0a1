/**
 * Joining, leaving and authorizing nodes: the rules that say who may become which node and
 * serve which service.
 *
 * - A join takes a node name only if no node holds it; the name of a node that is alive is
 *   never taken, and that of a dead one only with the admin's approval (the admin token, or a
 *   join token made with `--replace-node NAME`). Taking it revokes what the old node held.
 * - The node's service authorization is the join token's; only the admin changes it later.
 * - Removing a node (or a node leaving) revokes every certificate issued to it.
 */
import { MeshError } from '../errors/index.js';
import type { NodeRecord } from '../api/schemas.js';
import { nodeId } from '../ca/index.js';
import type { RegistryContext } from './context.js';
import type { Principal } from './auth.js';
import { keys } from './keys.js';
import { authorizationOf, changeAuthorization, mayServe, type ServiceAuthorization } from './authz.js';
import { tokenUnusable } from './tokens.js';
import type { Op, Compare } from '../store/types.js';

export interface JoinInput {
  nodeName: string;
  address: string;
  csr: string;
  meta: Record<string, string>;
}

export interface Joined {
  record: NodeRecord;
  certificate: string;
  replaced: boolean;
}

export async function joinNode(ctx: RegistryContext, p: Principal, body: JoinInput): Promise<Joined> {
  const name = body.nodeName;
  const token = p.kind === 'join' ? await ctx.tokens.get(p.tokenId) : undefined;
  if (p.kind === 'join') {
    const why = token ? tokenUnusable(token.record) : 'revoked';
    if (!token || why)
      throw new MeshError('MESH_ERR_UNAUTHENTICATED', `join token ${p.tokenId} cannot be used (${why})`);
  } else if (p.kind !== 'admin') {
    throw new MeshError('MESH_ERR_FORBIDDEN', 'joining needs a join token');
  }

  const prev = await ctx.nodes.get(name);
  if (prev) {
    if (await ctx.nodes.isAlive(name)) {
      throw new MeshError(
        'MESH_ERR_NODE_NAME_TAKEN',
        `node '${name}' is alive at ${prev.address}; remove it first with meshctl node remove`,
        {
          hint: `Pick another --node-name, or on the control plane: \`meshctl node remove ${name}\`.`,
          details: { node: name, address: prev.address },
        },
      );
    }
    const approved = p.kind === 'admin' || token?.record.replaceNode === name;
    if (!approved) {
      throw new MeshError(
        'MESH_ERR_NODE_NAME_TAKEN',
        `node '${name}' exists (last at ${prev.address}, not alive now); taking its name needs the admin's approval`,
        {
          hint: `On the control plane: \`meshctl node remove ${name}\`, or make a token that may take the name: \`meshctl token create --replace-node ${name} --service ...\`.`,
          details: { node: name, address: prev.address },
        },
      );
    }
  }

  // Sign first: a bad CSR must leave nothing changed (no node, no token use, no revocation).
  const signed = await ctx.ca.signCsr(body.csr, {
    expectedId: nodeId(ctx.config.trustDomain, name),
    ttlMs: ctx.config.nodeCertTtlSeconds * 1000,
    usage: 'both',
  });

  const auth: ServiceAuthorization = token
    ? { services: token.record.services ?? [], anyService: token.record.anyService === true }
    : { services: [], anyService: false };
  const record: NodeRecord = {
    name,
    address: body.address,
    meta: body.meta,
    joinedAt: new Date().toISOString(),
    certSerial: signed.serial,
    authorization: auth,
    ...(p.kind === 'join' ? { joinedWith: p.tokenId } : {}),
  };

  if (prev) await removeNode(ctx, name, 'replaced by a new join');

  const compare: Compare[] = [{ key: keys.node(name), target: 'exists', value: false }];
  const success: Op[] = [
    { type: 'put', key: keys.node(name), value: JSON.stringify(record) },
    ctx.revocations.issuedOp({
      serial: signed.serial,
      node: name,
      kind: 'node',
      notAfter: signed.notAfter.toISOString(),
    }),
  ];
  if (token) {
    const use = ctx.tokens.useOps(token.record, token.kv);
    compare.push(use.compare);
    success.push(use.put);
  }
  const res = await ctx.store.txn({ compare, success });
  if (!res.succeeded) {
    throw new MeshError(
      'MESH_ERR_CONFLICT',
      `another join of node '${name}', or with this token, happened at the same time`,
      {
        hint: 'Run the join again (a single-use token may now be used up).',
      },
    );
  }
  ctx.log.info(
    { node: name, address: body.address, token: p.kind === 'join' ? p.tokenId : 'admin', replaced: prev !== undefined },
    'node joined',
  );
  return { record, certificate: signed.certPem, replaced: prev !== undefined };
}

/** The node, its lease and instances leave, and every certificate issued to it is revoked. */
export async function removeNode(
  ctx: RegistryContext,
  name: string,
  reason: string,
): Promise<{ revision: number; revoked: number }> {
  const revoked = await ctx.revocations.revokeIssued(name, reason);
  const res = await ctx.nodes.remove(name);
  ctx.log.info({ node: name, reason, revoked: revoked.length }, 'node removed');
  return { revision: res.revision, revoked: revoked.length };
}

/**
 * The admin's allow/deny for a node. A deny also deregisters the node's instances of services it
 * may no longer serve and revokes their leaves, so it takes effect at once, not at expiry.
 */
export async function authorizeNode(
  ctx: RegistryContext,
  name: string,
  change: { action: 'allow' | 'deny'; services: string[]; anyService: boolean },
): Promise<{ record: NodeRecord; deregistered: string[]; revoked: number }> {
  const prev = await ctx.nodes.get(name);
  if (!prev)
    throw new MeshError('MESH_ERR_NOT_FOUND', `no node '${name}'`, {
      hint: 'List nodes with `meshctl catalog nodes`.',
    });
  const next = changeAuthorization(authorizationOf(prev), change, name);
  const record: NodeRecord = { ...prev, authorization: next };
  await ctx.nodes.upsert(record);
  const deregistered: string[] = [];
  let revoked = 0;
  if (change.action === 'deny') {
    for (const inst of await ctx.catalog.onNode(name)) {
      if (mayServe(next, inst.name)) continue;
      await ctx.catalog.deregister(name, inst.id);
      deregistered.push(inst.id);
    }
    revoked = (
      await ctx.revocations.revokeIssued(
        name,
        'service denied to the node',
        (rec) => rec.kind === 'leaf' && rec.service !== undefined && !mayServe(next, rec.service),
      )
    ).length;
  }
  ctx.log.info({ node: name, ...change, deregistered, revoked }, 'node authorization changed');
  return { record, deregistered, revoked };
}
