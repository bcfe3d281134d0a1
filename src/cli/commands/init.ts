import { Command, Option } from 'commander';
import { MeshError } from '../../errors/index.js';
import { initServer } from '../../registry/bootstrap.js';
import { parseBind } from '../../registry/config.js';
import { openSettings, defaultDataDir } from '../settings.js';
import { collect } from '../flags.js';
import { printJson, printLines } from '../output.js';

export function initCommand(): Command {
  return new Command('init')
    .description('make a new mesh on this host (--server) or join this host to one (--join)')
    .option('--server', 'make the control plane here: CA, registry config, admin and join tokens')
    .option('--data-dir <dir>', 'where the registry keeps its state (default: /var/lib/meshctl/registry as root, else ~/.local/share/meshctl/registry)')
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the mesh', 'mesh.local')
    .addOption(new Option('--default-intention <action>', 'what happens between services no intention names').choices(['deny', 'allow']).default('deny'))
    .option('--bind <addr:port>', 'address the registry listens on', '0.0.0.0:7443')
    .option('--advertise <host>', 'host or address agents use to reach the registry (default: this host\'s first address)')
    .option('--san <name>', 'extra DNS name or IP for the registry certificate (repeatable)', collect, [])
    .option('--force', 'replace an existing mesh in --data-dir (invalidates every certificate and token)')
    .option('--no-save', 'do not save the registry address and admin token in this user\'s CLI settings')
    .option('--json', 'print JSON instead of text')
    .action(async (opts: { server?: boolean; dataDir?: string; trustDomain: string; defaultIntention: 'allow' | 'deny'; bind: string; advertise?: string; san: string[]; force?: boolean; save: boolean; json?: boolean }) => {
      if (!opts.server) {
        throw new MeshError('MESH_ERR_USAGE', 'say what to make: --server for the control plane', { hint: 'meshctl init --server [--data-dir DIR]' });
      }
      const res = await initServer({
        dataDir: opts.dataDir ?? defaultDataDir('registry'),
        trustDomain: opts.trustDomain,
        defaultIntention: opts.defaultIntention,
        bind: opts.bind,
        san: opts.san,
        ...(opts.advertise ? { advertise: opts.advertise } : {}),
        ...(opts.force ? { force: true } : {}),
      });
      // This host's CLI talks to its own registry over loopback (the certificate names 127.0.0.1).
      const { host, port } = parseBind(res.bind);
      const localUrl = `https://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host}:${port}`;
      if (opts.save) openSettings().set({ registry: localUrl, token: res.adminToken, caFile: res.caCertPath });
      if (opts.json) {
        printJson({ ...res, cliSettingsSaved: opts.save, localUrl });
        return;
      }
      printLines([
        `Made a new mesh in ${res.dataDir}`,
        `  trust domain       ${res.trustDomain}`,
        `  default intention  ${res.defaultIntention}`,
        `  registry           ${res.bind} (agents join at ${res.advertiseUrl})`,
        `  CA fingerprint     ${res.caFingerprint}`,
        '',
        'Admin token (shown once; saved in this user\'s CLI settings' + (opts.save ? ')' : ' — not saved: --no-save)') + ':',
        `  ${res.adminToken}`,
        'Join token (for agents; make more with `meshctl token create`):',
        `  ${res.joinToken}`,
        '',
        'Next steps:',
        `  1. start the registry:   meshctl registry start --data-dir ${res.dataDir}`,
        '                           (or as a service: meshctl registry install --now)',
        '  2. on every host:        meshctl init --join ' + res.advertiseUrl + ' --token <join token> \\',
        `                             --ca-fingerprint ${res.caFingerprint}`,
        '  3. check:                meshctl catalog nodes',
      ]);
    });
}
