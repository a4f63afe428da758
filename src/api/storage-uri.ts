// Parses the storage URIs the schema accepts (model.storageUri, reference.uri, data source uri).
import { MODEL_STORE_URI_MESSAGE, MODEL_STORE_URI_REGEX } from "./v1alpha1.js";

export type StorageLocation =
  | { scheme: "pvc"; claimName: string; path: string }
  | { scheme: "file"; path: string }
  | { scheme: "http" | "https"; url: string }
  | { scheme: "s3"; bucket: string; prefix: string };

const storageUriPattern = new RegExp(MODEL_STORE_URI_REGEX);

/**
 * Splits a storage URI into its parts. `path` of a pvc:// URI is relative to the claim's root
 * ("" for the root); `prefix` of an s3:// URI has no leading or trailing '/' ("" for the bucket's root).
 * Throws an Error naming `field` for a URI the schema would reject.
 */
export function parseStorageUri(uri: string, field = "storageUri"): StorageLocation {
  // Said apart from the general shape, so the user learns why an otherwise well-formed URI is refused.
  if (/^(pvc|file|s3):\/\//.test(uri) && uri.split("/").includes("..")) {
    throw new Error(`${field}: "${uri}" must not contain ".." path segments: they resolve outside the store's root`);
  }
  if (!storageUriPattern.test(uri)) throw new Error(`${field}: "${uri}" ${MODEL_STORE_URI_MESSAGE}`);
  if (uri.startsWith("pvc://") || uri.startsWith("s3://")) {
    const rest = uri.slice(uri.indexOf("://") + 3);
    const slash = rest.indexOf("/");
    const root = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
    return uri.startsWith("s3://")
      ? { scheme: "s3", bucket: root, prefix: path.split("/").filter(Boolean).join("/") }
      : { scheme: "pvc", claimName: root, path };
  }
  if (uri.startsWith("file://")) return { scheme: "file", path: decodeURIComponent(new URL(uri).pathname) };
  return { scheme: uri.startsWith("https://") ? "https" : "http", url: uri };
}
