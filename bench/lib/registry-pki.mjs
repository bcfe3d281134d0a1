/**
 * The certificates of the TLS floor benches (tls-floor.mjs, tls-resume.mjs): a fresh mesh root,
 * the registry's server certificate for 127.0.0.1 and one node's leaf, made by the real CA.
 */
import { distImport } from './dist.mjs';

const TD = 'mesh.local';

export async function registryPki() {
  const { createRoot, CertificateAuthority, createKeyAndCsr, nodeId, serviceId } = await distImport('ca/index.js');
  const root = await createRoot({ trustDomain: TD });
  const ca = await CertificateAuthority.load({ ...root, trustDomain: TD });
  const server = await ca.issueServerCertificate({
    spiffeId: serviceId(TD, 'meshctl-registry'),
    ipAddresses: ['127.0.0.1'],
  });
  const { keyPem, csrPem } = await createKeyAndCsr({ spiffeId: nodeId(TD, 'n1') });
  const { certPem } = await ca.signCsr(csrPem, { expectedId: nodeId(TD, 'n1') });
  return { rootPem: root.certPem, server, node: { certPem, keyPem } };
}
