/**
 * The persistent identity of `linkmux node`: a self-signed TLS certificate that
 * clients pin by its SHA-256 fingerprint, its private key, and the shared secret
 * clients prove through a join token. Three files in the state directory:
 *
 *   node-cert.pem  certificate (ECDSA P-256, 20 years, CN "linkmux-node <name>")
 *   node-key.pem   PKCS#8 private key, mode 0600
 *   node-secret    base64url of 32 random bytes, mode 0600
 *
 * Guarantees: the directory is created 0700; every file is written atomically
 * (temp file, fsync, rename, directory fsync), so a crash never leaves a half
 * file; a partial set, an unparsable file or a key that does not match the
 * certificate is refused with LINKMUX_ERR_CONFIG naming the file, never silently
 * replaced (a new identity would invalidate every token already handed out).
 * The secret and the key never appear in messages or logs. Certificates come
 * from util/x509.ts (in-process, loaded only when one is generated).
 */
import { KeyObject, X509Certificate, createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';
import { silentLogger, type Logger } from '../util/logger.js';
import { createSelfSigned } from '../util/x509.js';
import { newTokenSecret } from '../links/join-token.js';

export interface NodeIdentity {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the DER certificate: 64 lowercase hex characters, no colons. */
  fingerprint: string;
  /** base64url of 32 random bytes. Never log it. */
  secret: string;
  /** True when this call generated the identity (first start or rotate). */
  created: boolean;
  dir: string;
}

export interface IdentityOptions {
  /** Replace cert, key and secret with new ones; old join tokens stop working. */
  rotate?: boolean;
  /** Goes into the certificate's CN; default: this machine's host name. */
  name?: string;
  /** Clock for the certificate's validity; default: the current time. */
  now?: Date;
  /** Receives warnings (loose file modes, expired certificate). */
  logger?: Logger;
}

export const CERT_FILE = 'node-cert.pem';
export const KEY_FILE = 'node-key.pem';
export const SECRET_FILE = 'node-secret';

const FILES = [CERT_FILE, KEY_FILE, SECRET_FILE] as const;
const VALID_YEARS = 20;
/** notBefore is set this far back so a peer whose clock lags still accepts the certificate. */
const BACKDATE_MS = 60 * 60 * 1000;
/** X.509 upper bound for a CommonName (RFC 5280 ub-common-name). */
const MAX_CN = 64;
const SECRET_BYTES = 32;
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Where node state lives: $LINKMUX_STATE_DIR, else /var/lib/linkmux for root,
 * else $XDG_STATE_HOME/linkmux (only when absolute, as the XDG spec asks),
 * else ~/.local/state/linkmux.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.()): string {
  if (env.LINKMUX_STATE_DIR) return env.LINKMUX_STATE_DIR;
  if (uid === 0) return '/var/lib/linkmux';
  const xdg = env.XDG_STATE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'linkmux');
  return join(env.HOME || homedir(), '.local', 'state', 'linkmux');
}

/** SHA-256 of the certificate's DER bytes as 64 lowercase hex characters. */
export function certificateFingerprint(certPem: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new LinkmuxError('LINKMUX_ERR_CONFIG', `not a valid PEM certificate: ${describe(err)}`, {
      cause: err,
    });
  }
  return createHash('sha256').update(cert.raw).digest('hex');
}

/**
 * Loads the identity from `dir`, creating it when none of its files exist (or
 * replacing it when `rotate` is set). Throws LINKMUX_ERR_CONFIG when the files
 * are incomplete, corrupt or do not belong together.
 */
export async function loadOrCreateIdentity(dir: string, opts: IdentityOptions = {}): Promise<NodeIdentity> {
  const logger = opts.logger ?? silentLogger;
  const texts = await Promise.all(FILES.map((f) => readOptional(join(dir, f))));
  const present = FILES.filter((_, i) => texts[i] !== undefined);

  if (opts.rotate || present.length === 0) {
    return createIdentity(dir, opts.name ?? hostname(), opts.now ?? new Date());
  }
  if (present.length < FILES.length) {
    const missing = FILES.filter((_, i) => texts[i] === undefined).map((f) => join(dir, f));
    throw configError(
      `the node identity in ${dir} is incomplete: ${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} missing`,
      dir,
    );
  }
  const [certPem, keyPem, secretText] = texts as [string, string, string];
  const identity = parseIdentity(dir, certPem, keyPem, secretText);
  await warnOnLooseModes(dir, logger);
  const notAfter = Date.parse(new X509Certificate(certPem).validTo);
  if (notAfter < (opts.now ?? new Date()).getTime()) {
    logger.warn(
      `the node certificate ${join(dir, CERT_FILE)} expired on ${new Date(notAfter).toISOString()}: ` +
        'run `linkmux node --init --rotate` to make a new identity (old join tokens stop working)',
    );
  }
  return identity;
}

function parseIdentity(dir: string, certPem: string, keyPem: string, secretText: string): NodeIdentity {
  const certPath = join(dir, CERT_FILE);
  const keyPath = join(dir, KEY_FILE);
  const secretPath = join(dir, SECRET_FILE);

  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw configError(`${certPath} is not a valid PEM certificate (${describe(err)})`, dir, err);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    // The parser's message never quotes key material, but keep it out anyway.
    throw configError(`${keyPath} is not a valid PEM private key`, dir, err);
  }
  if (!cert.checkPrivateKey(key)) {
    throw configError(`${keyPath} does not belong to the certificate ${certPath}`, dir);
  }
  const secret = secretText.trim();
  if (!SECRET_RE.test(secret) || Buffer.from(secret, 'base64url').length !== SECRET_BYTES) {
    throw configError(`${secretPath} is malformed (expected base64url of ${SECRET_BYTES} bytes)`, dir);
  }
  return {
    certPem,
    keyPem,
    fingerprint: createHash('sha256').update(cert.raw).digest('hex'),
    secret,
    created: false,
    dir,
  };
}

async function createIdentity(dir: string, name: string, now: Date): Promise<NodeIdentity> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { certPem, keyPem } = await generateCertificate(name, now);
  const secret = newTokenSecret();
  // All temp files are complete on disk before the first rename, so a crash
  // can only leave a mix of whole old and whole new files, which the loader
  // refuses as a key/cert mismatch instead of serving a broken identity.
  const staged = await Promise.all([
    stage(join(dir, CERT_FILE), certPem, 0o644),
    stage(join(dir, KEY_FILE), keyPem, 0o600),
    stage(join(dir, SECRET_FILE), `${secret}\n`, 0o600),
  ]);
  try {
    for (const { tmp, path } of staged) await rename(tmp, path);
  } finally {
    await Promise.all(staged.map(({ tmp }) => rm(tmp, { force: true })));
  }
  await syncDir(dir);
  return { certPem, keyPem, fingerprint: certificateFingerprint(certPem), secret, created: true, dir };
}

async function generateCertificate(name: string, now: Date): Promise<{ certPem: string; keyPem: string }> {
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALID_YEARS);
  return createSelfSigned({
    commonName: `linkmux-node ${name}`.slice(0, MAX_CN),
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter,
  });
}

/** Writes `text` to a unique temp file beside `path`, fsynced, with `mode`. */
async function stage(path: string, text: string, mode: number): Promise<{ tmp: string; path: string }> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.chmod(mode); // open's mode is filtered by the umask
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await rm(tmp, { force: true });
    throw new LinkmuxError('LINKMUX_ERR_IO', `cannot write ${path}: ${describe(err)}`, { cause: err });
  }
  return { tmp, path };
}

/** Makes the renames durable; best effort on platforms that cannot fsync a directory. */
async function syncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // EISDIR/EPERM on some platforms: the rename is still atomic, only less durable.
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (systemCode(err) === 'ENOENT') return undefined;
    throw new LinkmuxError('LINKMUX_ERR_IO', `cannot read ${path}: ${describe(err)}`, { cause: err });
  }
}

async function warnOnLooseModes(dir: string, logger: Logger): Promise<void> {
  for (const file of [KEY_FILE, SECRET_FILE]) {
    const path = join(dir, file);
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) {
      logger.warn(
        `${path} is readable by other users (mode ${mode.toString(8).padStart(4, '0')}): run \`chmod 600 ${path}\``,
      );
    }
  }
}

function configError(problem: string, dir: string, cause?: unknown): LinkmuxError {
  return new LinkmuxError(
    'LINKMUX_ERR_CONFIG',
    `${problem}. Fix or restore the file, or run \`linkmux node --init --rotate\` to make a new identity ` +
      `in ${dir} (this invalidates every join token already handed out).`,
    cause === undefined ? undefined : { cause },
  );
}
