/** Turns any thrown value into one clear stderr line and an exit code. */
import { LinkmuxError, describe } from '../util/errors.js';

export function reportError(
  err: unknown,
  write: (s: string) => void = (s) => process.stderr.write(s),
): number {
  if (err instanceof LinkmuxError) {
    write(`linkmux: error: ${err.message} [${err.code}]\n`);
    return err.code === 'LINKMUX_ERR_USAGE' ? 2 : 1;
  }
  write(`linkmux: internal error: ${describe(err)}\n`);
  if (err instanceof Error && err.stack && process.env.LINKMUX_DEBUG) write(`${err.stack}\n`);
  write('linkmux: this is a bug; please report it with the command you ran.\n');
  return 70;
}
