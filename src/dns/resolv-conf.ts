/**
 * The system's nameservers. Stub, replaced on merge: the real reader of
 * /etc/resolv.conf is being written on main; this keeps the branch compiling.
 */
export function systemNameservers(): Promise<string[]> {
  return Promise.resolve([]);
}
