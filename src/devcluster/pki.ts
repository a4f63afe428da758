// The local cluster's PKI: one CA, the API server's serving certificate, client certificates
// (admin in system:masters, one per component), and the service-account signing key pair.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type Key = webcrypto.CryptoKey;
type KeyPair = webcrypto.CryptoKeyPair;

const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const validity = 365 * 24 * 3600 * 1000;

export interface ClusterPki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  /** Client certificate + key per identity, e.g. admin, kube-controller-manager, kube-scheduler. */
  clients: Record<string, { cert: string; key: string }>;
}

export interface ClientIdentity {
  file: string;
  commonName: string;
  organization?: string;
}

async function pemKey(key: Key): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

async function pemPublicKey(key: Key): Promise<string> {
  const der = await webcrypto.subtle.exportKey("spki", key);
  return x509.PemConverter.encode(der, "PUBLIC KEY");
}

function generateKeys(): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("hex").replace(/^[89a-f]/, "1");
}

/** Writes a fresh PKI under dir (or reuses it when present: restarting a cluster keeps its credentials). */
export async function ensurePki(dir: string, clients: ClientIdentity[], serverHosts: string[]): Promise<ClusterPki> {
  const files = (name: string) => join(dir, name);
  const pki: ClusterPki = {
    dir,
    caCert: files("ca.crt"),
    caKey: files("ca.key"),
    servingCert: files("apiserver.crt"),
    servingKey: files("apiserver.key"),
    serviceAccountKey: files("sa.key"),
    serviceAccountPub: files("sa.pub"),
    clients: Object.fromEntries(clients.map((c) => [c.file, { cert: files(`${c.file}.crt`), key: files(`${c.file}.key`) }])),
  };
  const wanted = [pki.caCert, pki.servingCert, pki.serviceAccountKey, ...Object.values(pki.clients).map((c) => c.cert)];
  if (wanted.every((f) => existsSync(f))) return pki;

  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const now = new Date(Date.now() - 60_000);
  const notAfter = new Date(now.getTime() + validity);
  const caKeys = await generateKeys();
  const caName = "CN=ballast-dev-ca";
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: caName,
    notBefore: now,
    notAfter,
    keys: caKeys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  writeFileSync(pki.caCert, ca.toString("pem"));
  writeFileSync(pki.caKey, await pemKey(caKeys.privateKey), { mode: 0o600 });

  const issue = async (subject: string, usage: string, san?: x509.JsonGeneralNames) => {
    const keys = await generateKeys();
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([usage]),
    ];
    if (san) extensions.push(new x509.SubjectAlternativeNameExtension(san));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: caName,
      notBefore: now,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: caKeys.privateKey,
      signingAlgorithm: alg,
      extensions,
    });
    return { cert: cert.toString("pem"), key: await pemKey(keys.privateKey) };
  };

  const serverSan: x509.JsonGeneralNames = serverHosts.map((h) =>
    /^[\d.]+$/.test(h) || h.includes(":") ? { type: "ip", value: h } : { type: "dns", value: h },
  );
  const serving = await issue("CN=kube-apiserver", x509.ExtendedKeyUsage.serverAuth, serverSan);
  writeFileSync(pki.servingCert, serving.cert);
  writeFileSync(pki.servingKey, serving.key, { mode: 0o600 });

  for (const c of clients) {
    const subject = `CN=${c.commonName}` + (c.organization ? `, O=${c.organization}` : "");
    const issued = await issue(subject, x509.ExtendedKeyUsage.clientAuth);
    const paths = pki.clients[c.file]!;
    writeFileSync(paths.cert, issued.cert);
    writeFileSync(paths.key, issued.key, { mode: 0o600 });
  }

  const saKeys = await generateKeys();
  writeFileSync(pki.serviceAccountKey, await pemKey(saKeys.privateKey), { mode: 0o600 });
  writeFileSync(pki.serviceAccountPub, await pemPublicKey(saKeys.publicKey));
  return pki;
}
