// The environment through which the operator tells a pod how to reach an s3:// model store (from spec.model.s3)
// and `ballast serve`/`sidecar`/`train` read it. The names are the AWS CLI's and SDKs' own where one exists, so a
// pod configured by hand (spec.serving.env, spec.retraining.env) works the same way.
export const S3_ENV = {
  endpoint: "AWS_ENDPOINT_URL_S3",
  /** The endpoint for every AWS service: read when AWS_ENDPOINT_URL_S3 is unset. */
  anyEndpoint: "AWS_ENDPOINT_URL",
  region: "AWS_REGION",
  defaultRegion: "AWS_DEFAULT_REGION",
  /** Ballast's own: the AWS SDKs take path-style addressing as a client option, not from the environment. */
  forcePathStyle: "BALLAST_S3_FORCE_PATH_STYLE",
  accessKeyId: "AWS_ACCESS_KEY_ID",
  secretAccessKey: "AWS_SECRET_ACCESS_KEY",
  sessionToken: "AWS_SESSION_TOKEN",
  /** Set by EKS for IRSA; Ballast does not exchange it (see docs/storage.md) and says so when it is all there is. */
  webIdentityTokenFile: "AWS_WEB_IDENTITY_TOKEN_FILE",
} as const;
