/**
 * Commands as data: what the testbed runs (`ip`, `tc`, `nft`, `sysctl`),
 * their shell-like text for logs and unit-test comparisons, and which failures are
 * harmless. Nothing here runs anything.
 */

export interface Command {
  cmd: string;
  args: string[];
  /** Fed to stdin (nft -f -). */
  input?: string;
}

export const ip = (...args: string[]): Command => ({ cmd: 'ip', args });
export const nsExec = (ns: string, cmd: string, ...args: string[]): Command => ({
  cmd: 'ip',
  args: ['netns', 'exec', ns, cmd, ...args],
});
export const sysctl = (ns: string, setting: string): Command => nsExec(ns, 'sysctl', '-qw', setting);

/** A `route del` may find its route already gone; every other command must succeed. */
export function isTolerant(cmd: Command): boolean {
  return cmd.cmd === 'ip' && cmd.args.includes('route') && cmd.args.includes('del');
}

/** Shell-like text of commands, for logs, dry runs and unit-test comparisons. */
export function formatCommands(cmds: readonly Command[]): string {
  return cmds
    .map((c) => {
      const line = [c.cmd, ...c.args.map(quote)].join(' ');
      return c.input === undefined ? line : `${line} <<'EOF'\n${c.input.replace(/\n$/, '')}\nEOF`;
    })
    .join('\n');
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
