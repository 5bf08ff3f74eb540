/**
 * `completion bash|zsh|fish`: print a shell completion script made from the CLI's own command tree
 * (every command, subcommand and option, with the choices an option takes).
 */
import { Argument, type Command } from 'commander';
import { completionScript, SHELLS, type Shell } from '../completion.js';
import type { Context } from '../context.js';

export function registerCompletion(program: Command, ctx: Context): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(signal-integrations completion bash)')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
    .action((shell: Shell) => {
      ctx.io.stdout.write(completionScript(shell, program));
    });
}
