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
  /**
   * Web identity (IRSA on EKS, or spec.model.s3.webIdentity): the role to assume with the OIDC token in the file,
   * which the kubelet rotates, exchanged with STS (AssumeRoleWithWebIdentity) when no keys are set.
   */
  webIdentityTokenFile: "AWS_WEB_IDENTITY_TOKEN_FILE",
  roleArn: "AWS_ROLE_ARN",
  roleSessionName: "AWS_ROLE_SESSION_NAME",
  /** STS endpoint: the AWS CLI's service-specific override; else AWS_ENDPOINT_URL; else AWS STS (regional unless "legacy"). */
  stsEndpoint: "AWS_ENDPOINT_URL_STS",
  stsRegionalEndpoints: "AWS_STS_REGIONAL_ENDPOINTS",
} as const;
