// The environment that lets a pod's `ballast serve`, `sidecar` and `train` reach an s3:// model store: endpoint,
// region and addressing style from spec.model.s3, and the credentials as references to the user's Secret, so the
// keys never pass through the operator, the pod spec or status.
import type { V1EnvVar } from "@kubernetes/client-node";
import type { ResolvedModelDeployment } from "../api/index.js";
import { S3_ENV } from "../api/s3-env.js";

/**
 * Every variable the model store reads, whoever sets it (spec.model.s3 or the user's own env): the S3 settings, and
 * the http limits of runtime/store.ts (plain http beyond loopback, the size cap), which an s3:// endpoint obeys too.
 */
export const STORE_ENV_NAMES: ReadonlySet<string> = new Set([...Object.values(S3_ENV), "BALLAST_ALLOW_INSECURE_HTTP", "BALLAST_HTTP_MAX_BYTES"]);

/** Nothing unless spec.model.storageUri is s3://; then only what spec.model.s3 sets. */
export function storeEnv(md: ResolvedModelDeployment): V1EnvVar[] {
  const s3 = md.spec.model.s3;
  if (!md.spec.model.storageUri.startsWith("s3://") || !s3) return [];
  const secret = s3.credentialsSecretRef?.name;
  return [
    ...(s3.endpoint ? [{ name: S3_ENV.endpoint, value: s3.endpoint }] : []),
    ...(s3.region ? [{ name: S3_ENV.region, value: s3.region }] : []),
    ...(s3.forcePathStyle !== undefined ? [{ name: S3_ENV.forcePathStyle, value: String(s3.forcePathStyle) }] : []),
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
