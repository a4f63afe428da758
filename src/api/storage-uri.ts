// Parses the storage URIs the schema accepts (model.storageUri, reference.uri, data source uri).
import { STORAGE_URI_REGEX } from "./v1alpha1.js";

export type StorageLocation = { scheme: "pvc"; claimName: string; path: string } | { scheme: "file"; path: string } | { scheme: "http" | "https"; url: string };

const storageUriPattern = new RegExp(STORAGE_URI_REGEX);

/**
 * Splits a storage URI into its parts. `path` of a pvc:// URI is relative to the claim's root
 * ("" for the root). Throws an Error naming `field` for a URI the schema would reject.
 */
export function parseStorageUri(uri: string, field = "storageUri"): StorageLocation {
  // Said apart from the general shape, so the user learns why an otherwise well-formed URI is refused.
  if (/^(pvc|file):\/\//.test(uri) && uri.split("/").includes("..")) {
    throw new Error(`${field}: "${uri}" must not contain ".." path segments: they resolve outside the store's root`);
  }
  if (!storageUriPattern.test(uri)) {
    throw new Error(`${field}: "${uri}" must be pvc://<claim>/<path>, file:///<absolute path> or http(s)://<host>/<path>`);
  }
  if (uri.startsWith("pvc://")) {
    const rest = uri.slice("pvc://".length);
    const slash = rest.indexOf("/");
    const claimName = slash < 0 ? rest : rest.slice(0, slash);
    const path = slash < 0 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
    return { scheme: "pvc", claimName, path };
  }
  if (uri.startsWith("file://")) return { scheme: "file", path: decodeURIComponent(new URL(uri).pathname) };
  return { scheme: uri.startsWith("https://") ? "https" : "http", url: uri };
}
