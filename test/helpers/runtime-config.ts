/**
 * Runtime configs for in-process daemons: the schema's defaults
 * (`runtimeDefaults`) with a test's overrides, and listen addresses written as
 * the user writes them ("127.0.0.1:0") but handed over parsed, as toRuntime does.
 */
import { parseControlAddress } from '../../src/control/control-address.js';
import type { ListenAddress } from '../../src/config/runtime.js';

/** "HOST:PORT" as a parsed TCP listen address (port 0: the OS picks). */
export function tcpAt(text: string): ListenAddress & { kind: 'tcp' } {
  const a = parseControlAddress(text, 'test listen address');
  if (a.kind !== 'tcp') throw new Error(`${text} is not HOST:PORT`);
  return a;
}

/** Every front end and the control API on 127.0.0.1, free ports. */
export function loopbackListen(): {
  socks: ListenAddress & { kind: 'tcp' };
  http: ListenAddress & { kind: 'tcp' };
  control: ListenAddress;
} {
  return { socks: tcpAt('127.0.0.1:0'), http: tcpAt('127.0.0.1:0'), control: tcpAt('127.0.0.1:0') };
}
