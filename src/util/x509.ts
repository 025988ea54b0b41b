/**
 * Self-signed X.509 certificates, made in-process (ECDSA P-256 from Node's
 * webcrypto, signed by @peculiar/x509): the relay node's pinned identity and
 * the testbed's HTTPS server both come from here, so nothing shells out to
 * openssl. @peculiar/x509 resolves its algorithms through tsyringe, which needs
 * the Reflect metadata polyfill before the library is evaluated; both are
 * loaded only when a certificate is made.
 */
import { KeyObject, randomBytes, webcrypto } from 'node:crypto';

export interface SelfSignedOptions {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  /** IP addresses for subjectAltName (the testbed's server address). */
  ipAddresses?: readonly string[];
  /** Usable as its own CA (curl --cacert): CA:TRUE and keyCertSign. Otherwise a TLS server leaf. */
  ca?: boolean;
}

/** A fresh key pair and a self-signed certificate, both PEM (the key PKCS#8). */
export async function createSelfSigned(
  opts: SelfSignedOptions,
): Promise<{ certPem: string; keyPem: string }> {
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  // Node's webcrypto is the DOM Crypto the library types expect (lib "dom" is not loaded here).
  const crypto = webcrypto as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[1];
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const usage = opts.ca
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign
    : x509.KeyUsageFlags.digitalSignature;
  const ips = opts.ipAddresses ?? [];
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomBytes(16).toString('hex'),
      // A JSON name, not a DN string, so commas or '=' in a host name need no escaping.
      name: [{ CN: [opts.commonName] }],
      notBefore: opts.notBefore,
      notAfter: opts.notAfter,
      signingAlgorithm: alg,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(opts.ca ?? false, undefined, true),
        new x509.KeyUsagesExtension(usage, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        ...(ips.length > 0
          ? [new x509.SubjectAlternativeNameExtension(ips.map((value) => ({ type: 'ip' as const, value })))]
          : []),
      ],
    },
    crypto,
  );
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { certPem: cert.toString('pem'), keyPem };
}
