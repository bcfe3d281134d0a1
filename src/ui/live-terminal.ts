/**
 * Ink draws only the final frame when it sees CI variables: it takes the output for a build log,
 * not a person. The live dashboard runs only when both ends are a terminal, where that guess is
 * wrong (a tmate session on a CI runner, a shell with CI=1 exported), and it would show a blank
 * screen until quit. Ink reads the variables once, when it loads, so this runs before that.
 */
const CI_VARIABLES = ['CI', 'CONTINUOUS_INTEGRATION'] as const;

export function letInkDrawLive(env: NodeJS.ProcessEnv = process.env): void {
  for (const key of CI_VARIABLES) delete env[key];
}
