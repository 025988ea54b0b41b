/**
 * A tiny leveled logger writing to stderr, so stdout stays free for data and
 * --json output. Callers must never pass secrets; URLs go through redactUrl.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = defaultWrite): Logger {
  const at = ORDER[level];
  const emit = (l: LogLevel, msg: string) => {
    if (ORDER[l] >= at) write(`linkmux: ${l === 'info' ? '' : `${l}: `}${msg}\n`);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
  };
}

function defaultWrite(line: string): void {
  process.stderr.write(line);
}

export const silentLogger: Logger = createLogger('silent');
