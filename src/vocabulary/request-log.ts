// The request log's default bounds: one source for the sidecar's flags (src/cli), its writer (src/runtime) and the
// operator, which sizes the log's emptyDir from them. Constants only, so every folder may import it.

/** A new segment starts above this size. */
export const DEFAULT_LOG_SEGMENT_BYTES = 64 * 1024 * 1024;
/** The log (or, when shipped to an s3:// store, its unshipped spool) is kept under this many bytes. */
export const DEFAULT_LOG_MAX_BYTES = 1024 * 1024 * 1024;
