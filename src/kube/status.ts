// Status writes through the /status subresource with optimistic concurrency: a 409 Conflict means
// someone wrote in between, so read the object again, recompute, and retry (client-go's RetryOnConflict).
import { isDeepStrictEqual } from "node:util";
import { KubeApiError, resourcePath, type KubeClient, type KubeObject, type ResourceType } from "./client.js";

export interface StatusUpdateOptions {
  /** Attempts before the conflict is returned to the caller (who requeues). */
  attempts?: number;
  fieldManager?: string;
  /** Called on every 409 Conflict (for a metric). */
  onConflict?: () => void;
}

/**
 * Replaces `status` with `computeStatus(latest)`, starting from `current` (usually the cached copy);
 * skips the write when nothing changed. Answers the object as stored, or undefined if it is gone.
 */
export async function updateStatusWithRetry<S, T extends KubeObject & { status?: S }>(
  client: KubeClient,
  resource: ResourceType,
  current: T,
  computeStatus: (latest: T) => S,
  options: StatusUpdateOptions = {},
): Promise<T | undefined> {
  const attempts = options.attempts ?? 5;
  const path = resourcePath(resource, current.metadata?.namespace, current.metadata?.name);
  let latest = current;
  for (let attempt = 1; ; attempt++) {
    const status = computeStatus(latest);
    if (isDeepStrictEqual(status, latest.status)) return latest;
    try {
      return await client.replace<T>(`${path}/status`, { ...latest, status }, { query: { fieldManager: options.fieldManager } });
    } catch (err) {
      if (!(err instanceof KubeApiError)) throw err;
      if (err.notFound) return undefined;
      if (err.conflict) options.onConflict?.();
      if (!err.conflict || attempt >= attempts) throw err;
    }
    // Jittered, short: conflicts clear as soon as we have read the newer version.
    await new Promise((r) => setTimeout(r, 10 * attempt * (0.5 + Math.random())));
    try {
      latest = await client.get<T>(path);
    } catch (err) {
      if (err instanceof KubeApiError && err.notFound) return undefined;
      throw err;
    }
  }
}
