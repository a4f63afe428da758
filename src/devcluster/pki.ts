// The local cluster's PKI: the cluster CA (the API server's serving certificate, client certificates: admin in
// system:masters, one per component) and a separate etcd CA (etcd's certificate, the API server's client
// certificate for etcd), so a cluster client certificate never opens etcd. Plus the service-account signing
// key pair. The directory is 0700 and every private key 0600: the CA key and the admin key are cluster-admin.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { webcrypto } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type Key = webcrypto.CryptoKey;
type KeyPair = webcrypto.CryptoKeyPair;

const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const validity = 365 * 24 * 3600 * 1000;
const CA_CERT = "ca.crt";
const CA_KEY = "ca.key";

export interface CertAndKey {
  cert: string;
  key: string;
}

export interface ClusterPki {
  dir: string;
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  /** The CA etcd trusts for clients and peers; nothing else is signed by it. */
  etcdCaCert: string;
  etcdCaKey: string;
  /** etcd's certificate, for serving clients and its peer port (server and client auth). */
  etcd: CertAndKey;
  /** The API server's client certificate for etcd. */
  apiServerEtcdClient: CertAndKey;
  serviceAccountKey: string;
  serviceAccountPub: string;
  /** Client certificate + key per identity, e.g. admin, kube-controller-manager, kube-scheduler. */
  clients: Record<string, CertAndKey>;
}

export interface ClientIdentity {
  file: string;
  commonName: string;
  organization?: string;
}

interface Issuer {
  name: string;
  keys: KeyPair;
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

/** 0600 also when the file already exists (writeFile's mode applies only to a new file). */
function writePrivateKey(path: string, pem: string): void {
  writeFileSync(path, pem, { mode: 0o600 });
  chmodSync(path, 0o600);
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString("hex")
    .replace(/^[89a-f]/, "1");
}

function hostNames(hosts: string[]): x509.JsonGeneralNames {
  return hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(":") ? { type: "ip", value: h } : { type: "dns", value: h }));
}

const now = () => new Date(Date.now() - 60_000);

async function createCa(name: string, files: CertAndKey): Promise<Issuer> {
  const keys = await generateKeys();
  const notBefore = now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    notBefore,
    notAfter: new Date(notBefore.getTime() + validity),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  writeFileSync(files.cert, ca.toString("pem"));
  writePrivateKey(files.key, await pemKey(keys.privateKey));
  return { name, keys };
}

async function issue(issuer: Issuer, subject: string, usages: string[], files: CertAndKey, san?: x509.JsonGeneralNames): Promise<void> {
  const keys = await generateKeys();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(usages),
  ];
  if (san) extensions.push(new x509.SubjectAlternativeNameExtension(san));
  const notBefore = now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject,
    issuer: issuer.name,
    notBefore,
    notAfter: new Date(notBefore.getTime() + validity),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: alg,
    extensions,
  });
  writeFileSync(files.cert, cert.toString("pem"));
  writePrivateKey(files.key, await pemKey(keys.privateKey));
}

/** Writes a fresh PKI under dir (or reuses it when complete: restarting a cluster keeps its credentials). */
export async function ensurePki(dir: string, clients: ClientIdentity[], serverHosts: string[]): Promise<ClusterPki> {
  const files = (name: string) => join(dir, name);
  const pair = (name: string): CertAndKey => ({ cert: files(`${name}.crt`), key: files(`${name}.key`) });
  const pki: ClusterPki = {
    dir,
    caCert: files(CA_CERT),
    caKey: files(CA_KEY),
    servingCert: files("apiserver.crt"),
    servingKey: files("apiserver.key"),
    etcdCaCert: files("etcd-ca.crt"),
    etcdCaKey: files("etcd-ca.key"),
    etcd: pair("etcd"),
    apiServerEtcdClient: pair("apiserver-etcd-client"),
    serviceAccountKey: files("sa.key"),
    serviceAccountPub: files("sa.pub"),
    clients: Object.fromEntries(clients.map((c) => [c.file, pair(c.file)])),
  };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode applies only to a new directory: a PKI directory from an older release is tightened too.
  chmodSync(dir, 0o700);
  const wanted = [
    pki.caCert,
    pki.servingCert,
    pki.etcdCaCert,
    pki.etcd.cert,
    pki.apiServerEtcdClient.cert,
    pki.serviceAccountKey,
    ...Object.values(pki.clients).map((c) => c.cert),
  ];
  if (wanted.every((f) => existsSync(f))) return pki;

  const ca = await createCa("CN=ballast-dev-ca", { cert: pki.caCert, key: pki.caKey });
  await issue(ca, "CN=kube-apiserver", [x509.ExtendedKeyUsage.serverAuth], { cert: pki.servingCert, key: pki.servingKey }, hostNames(serverHosts));
  for (const c of clients) {
    const subject = `CN=${c.commonName}` + (c.organization ? `, O=${c.organization}` : "");
    await issue(ca, subject, [x509.ExtendedKeyUsage.clientAuth], pki.clients[c.file]!);
  }

  const etcdCa = await createCa("CN=ballast-dev-etcd-ca", { cert: pki.etcdCaCert, key: pki.etcdCaKey });
  // etcd listens on loopback only; its one member dials its own peer port, hence client auth as well.
  await issue(
    etcdCa,
    "CN=ballast-dev-etcd",
    [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    pki.etcd,
    hostNames(["127.0.0.1", "localhost"]),
  );
  await issue(etcdCa, "CN=kube-apiserver-etcd-client", [x509.ExtendedKeyUsage.clientAuth], pki.apiServerEtcdClient);

  const saKeys = await generateKeys();
  writePrivateKey(pki.serviceAccountKey, await pemKey(saKeys.privateKey));
  writeFileSync(pki.serviceAccountPub, await pemPublicKey(saKeys.publicKey));
  return pki;
}

/** The local nodes' kubelet API serving certificate + key, under the PKI directory. */
export const kubeletServingFiles = (pkiDir: string): CertAndKey => ({ cert: join(pkiDir, "kubelet.crt"), key: join(pkiDir, "kubelet.key") });

/**
 * Issues the kubelet API's serving certificate for the local nodes' addresses, signed by the cluster CA (the API
 * server verifies it with --kubelet-certificate-authority). Issued on every start: the node count may change.
 */
export async function issueKubeletServingCert(pki: ClusterPki, nodeAddresses: string[]): Promise<CertAndKey> {
  const files = kubeletServingFiles(pki.dir);
  await issue(await clusterCa(pki), "CN=ballast-local-nodes-kubelet", [x509.ExtendedKeyUsage.serverAuth], files, hostNames(nodeAddresses));
  return files;
}

/**
 * A client certificate for an identity added after the PKI under pkiDir was first written (e.g. Prometheus with `dev
 * up --prometheus`), signed by its cluster CA: adding it to ensurePki's list would re-create the whole PKI.
 */
export async function issueClientCert(pkiDir: string, identity: ClientIdentity): Promise<CertAndKey> {
  const files = { cert: join(pkiDir, `${identity.file}.crt`), key: join(pkiDir, `${identity.file}.key`) };
  if (existsSync(files.cert) && existsSync(files.key)) return files;
  const subject = `CN=${identity.commonName}` + (identity.organization ? `, O=${identity.organization}` : "");
  await issue(await clusterCa({ caCert: join(pkiDir, CA_CERT), caKey: join(pkiDir, CA_KEY) }), subject, [x509.ExtendedKeyUsage.clientAuth], files);
  return files;
}

async function clusterCa(pki: Pick<ClusterPki, "caCert" | "caKey">): Promise<Issuer> {
  const caCert = new x509.X509Certificate(readFileSync(pki.caCert, "utf8"));
  const caKey = await webcrypto.subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(readFileSync(pki.caKey, "utf8")), alg, false, ["sign"]);
  return { name: caCert.subject, keys: { privateKey: caKey, publicKey: await caCert.publicKey.export() } };
}
