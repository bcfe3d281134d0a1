/** The commander program: every command registered here, nothing executed. */
import { Command } from 'commander';
import { createRequire } from 'node:module';
import { initCommand } from './commands/init.js';
import { registryCommand } from './commands/registry.js';
import { catalogCommand } from './commands/catalog.js';
import { intentionCommand } from './commands/intention.js';
import { tokenCommand } from './commands/token.js';
import { nodeCommand } from './commands/node.js';
import { caCommand } from './commands/ca.js';
import { agentCommand } from './commands/agent.js';
import { deregisterCommand, registerCommand } from './commands/register.js';
import { servicesCommand } from './commands/services.js';
import { checkCommand } from './commands/check.js';
import { proxyCommand } from './commands/proxy.js';
import { demoCommand } from './commands/demo.js';
import { statusCommand } from './commands/status.js';
import { applyCommand, configCommand, deleteCommand, getCommand } from './commands/config.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

/** `jsonErrors`: parse errors are left to the top-level catch to print as JSON (--json given). */
export function buildProgram(opts: { jsonErrors?: boolean } = {}): Command {
  const program = new Command('meshctl')
    .description('A service mesh for VMs and bare metal: discovery, mTLS, intentions and load balancing, from one CLI.')
    .version(pkg.version, '-v, --version')
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError(true);
  for (const cmd of [
    initCommand(),
    registryCommand(),
    agentCommand(),
    registerCommand(),
    deregisterCommand(),
    servicesCommand(),
    checkCommand(),
    catalogCommand(),
    intentionCommand(),
    applyCommand(),
    getCommand(),
    deleteCommand(),
    configCommand(),
    tokenCommand(),
    nodeCommand(),
    caCommand(),
    statusCommand(),
    demoCommand(),
    proxyCommand(),
  ]) {
    program.addCommand(cmd);
  }
  // Parse errors must reach the one top-level catch instead of exiting inside commander.
  const applyAll = (c: Command) => {
    c.exitOverride();
    if (opts.jsonErrors) c.configureOutput({ outputError: () => undefined });
    c.commands.forEach(applyAll);
  };
  applyAll(program);
  return program;
}
