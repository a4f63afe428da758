// The environment that lets a pod's `ballast serve`, `sidecar` and `train` reach an s3:// model store: endpoint,
// region and addressing style from spec.model.s3, and the credentials as references to the user's Secret, so the
// keys never pass through the operator, the pod spec or status.
import type { V1EnvVar, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import type { ResolvedModelDeployment } from "../api/index.js";
import { S3_ENV } from "../api/s3-env.js";

/**
 * Every variable the model store reads, whoever sets it (spec.model.s3 or the user's own env): the S3 settings, and
 * the http limits of runtime/store.ts (plain http beyond loopback, the size cap), which an s3:// endpoint obeys too.
 */
export const STORE_ENV_NAMES: ReadonlySet<string> = new Set([...Object.values(S3_ENV), "BALLAST_ALLOW_INSECURE_HTTP", "BALLAST_HTTP_MAX_BYTES"]);

/**
 * What spec.model.s3 sets, for every s3:// URI the pods read (the store, the reference profile, training data; the
 * CRD allows spec.model.s3 only beside one); nothing without it.
 */
export function storeEnv(md: ResolvedModelDeployment): V1EnvVar[] {
  const s3 = md.spec.model.s3;
  if (!s3) return [];
  const secret = s3.credentialsSecretRef?.name;
  const webIdentity = s3.webIdentity;
  return [
    ...(s3.endpoint ? [{ name: S3_ENV.endpoint, value: s3.endpoint }] : []),
    ...(s3.region ? [{ name: S3_ENV.region, value: s3.region }] : []),
    ...(s3.forcePathStyle !== undefined ? [{ name: S3_ENV.forcePathStyle, value: String(s3.forcePathStyle) }] : []),
    ...(webIdentity
      ? [
          { name: S3_ENV.roleArn, value: webIdentity.roleArn },
          { name: S3_ENV.webIdentityTokenFile, value: `${WEB_IDENTITY_DIR}/${WEB_IDENTITY_FILE}` },
          ...(webIdentity.stsEndpoint ? [{ name: S3_ENV.stsEndpoint, value: webIdentity.stsEndpoint }] : []),
        ]
      : []),
    ...(secret
      ? [
          { name: S3_ENV.accessKeyId, valueFrom: { secretKeyRef: { name: secret, key: S3_ENV.accessKeyId } } },
          { name: S3_ENV.secretAccessKey, valueFrom: { secretKeyRef: { name: secret, key: S3_ENV.secretAccessKey } } },
          // Temporary credentials only: a Secret with long-lived keys has no token, and the pod still starts.
          { name: S3_ENV.sessionToken, valueFrom: { secretKeyRef: { name: secret, key: S3_ENV.sessionToken, optional: true } } },
        ]
      : []),
  ];
}

const WEB_IDENTITY_VOLUME = "s3-web-identity";
const WEB_IDENTITY_DIR = "/var/run/secrets/ballast.dev/s3-web-identity";
const WEB_IDENTITY_FILE = "token";
/** The kubelet renews a projected token at 80% of its life; STS sessions last an hour by default too. */
const WEB_IDENTITY_TOKEN_SECONDS = 3600;

/**
 * With spec.model.s3.webIdentity, the ServiceAccount token the pods exchange with STS: projected for the role's
 * audience (not the API server's), rotated by the kubelet, and read afresh at each exchange.
 */
export function storeVolume(md: ResolvedModelDeployment): { volume: V1Volume; mount: V1VolumeMount } | undefined {
  const webIdentity = md.spec.model.s3?.webIdentity;
  if (!webIdentity) return undefined;
  return {
    volume: {
      name: WEB_IDENTITY_VOLUME,
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: webIdentity.audience ?? "sts.amazonaws.com",
              expirationSeconds: WEB_IDENTITY_TOKEN_SECONDS,
              path: WEB_IDENTITY_FILE,
            },
          },
        ],
      },
    },
    mount: { name: WEB_IDENTITY_VOLUME, mountPath: WEB_IDENTITY_DIR, readOnly: true },
  };
}
