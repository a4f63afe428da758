// An informer that recovers on its own: list, then watch from the list's resourceVersion; relist on
// 410 Gone; reconnect with backoff on any other failure (API server down, network, RBAC); a synced
// barrier so reconcilers never start from a half-filled cache.
import type { Logger } from "pino";
import { KubeApiError, resourcePath, type KubeClient, type KubeList, type KubeObject, type ResourceType } from "./client.js";
import { Backoff } from "./rate-limiter.js";
import { sleepUnlessAborted } from "./abortable-sleep.js";

/** Read access to an informer's cache, keyed "namespace/name". */
export interface ObjectCache<T> {
  get(key: string): T | undefined;
  list(): T[];
}

export interface InformerHandlers<T> {
  add?(obj: T): void;
  update?(oldObj: T, newObj: T): void;
  delete?(obj: T): void;
}

export interface InformerOptions<T extends KubeObject> {
  client: KubeClient;
  resource: ResourceType;
  /** One namespace, or undefined for all of them. */
  namespace?: string;
  labelSelector?: string;
  logger: Logger;
  /** Applied to every object before caching (e.g. drop managedFields to save memory). */
  transform?: (obj: T) => T;
  /** Server-side watch timeout; the watch is renewed from the last resourceVersion after it. */
  watchTimeoutSeconds?: number;
  /**
   * A watch with no event and no bookmark for this long is taken for dead (a half-open connection, a
   * stuck server) and aborted, then the cache relisted. Default WATCH_IDLE_TIMEOUT_MS.
   */
  watchIdleTimeoutMs?: number;
  backoff?: Backoff;
  /** Page size of the initial and recovery lists. */
  pageSize?: number;
}

export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata?.name ?? ""}` : (obj.metadata?.name ?? "");
}

/** Drops managedFields, which can be half an object's size and which no reconciler reads. */
export function withoutManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
  return obj;
}

/** The API server sends a watch that asks for bookmarks one about every minute, quiet or not: three missed means dead. */
export const WATCH_IDLE_TIMEOUT_MS = 3 * 60_000;

class Gone extends Error {}
class WatchIdle extends Error {}

export class Informer<T extends KubeObject> implements ObjectCache<T> {
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private resourceVersion = "";
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private abort = new AbortController();
  private running: Promise<void> | undefined;
  private readonly backoff: Backoff;
  private readonly path: string;
  private readonly log: Logger;
  /** How many times the informer relisted or reconnected after a failure; for tests and logs. */
  recoveries = 0;

  constructor(private readonly options: InformerOptions<T>) {
    this.backoff = options.backoff ?? new Backoff(200, 30_000);
    this.path = resourcePath(options.resource, options.namespace);
    this.log = options.logger.child({ informer: options.resource.plural, watchNamespace: options.namespace ?? "*" });
  }

  on(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  get size(): number {
    return this.store.size;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list has filled the cache (or rejects when `signal` aborts first). */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.syncWaiters.push(resolve);
      signal?.addEventListener("abort", () => reject(new Error("stopped before the cache synced")), { once: true });
    });
  }

  start(): void {
    if (this.running) return;
    this.abort = new AbortController();
    this.running = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    this.running = undefined;
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.relist(signal);
        await this.watchOnce(signal);
        // The server closed the watch (its timeout): renew it from where we are, no backoff.
      } catch (err) {
        if (signal.aborted) break;
        this.recoveries++;
        if (err instanceof Gone) {
          this.log.info({ resourceVersion: this.resourceVersion }, "watch expired (410 Gone); relisting");
          this.resourceVersion = "";
          continue;
        }
        if (err instanceof WatchIdle) {
          this.log.warn({ resourceVersion: this.resourceVersion, idleMs: this.idleTimeoutMs }, "watch silent (no event, no bookmark); relisting");
          this.resourceVersion = "";
          continue;
        }
        const delay = this.backoff.next();
        this.log.warn({ err: String(err), retryInMs: Math.round(delay) }, "list/watch failed; retrying");
        await sleepUnlessAborted(delay, signal);
      }
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv: string;
    do {
      const page = await this.options.client.get<KubeList<T>>(this.path, {
        query: { labelSelector: this.options.labelSelector, limit: this.options.pageSize ?? 500, continue: cont },
        signal,
      });
      for (const item of page.items) items.push(this.transform(item));
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? "";
    } while (cont);
    this.replace(items);
    this.resourceVersion = rv;
    this.backoff.reset();
    if (!this.synced) {
      this.synced = true;
      this.log.info({ objects: this.store.size }, "cache synced");
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private transform(obj: T): T {
    return this.options.transform ? this.options.transform(obj) : obj;
  }

  /** Makes the store equal to a fresh list, telling handlers what changed while we were not watching. */
  private replace(items: T[]): void {
    const fresh = new Map(items.map((o) => [objectKey(o), o]));
    for (const [key, old] of this.store) {
      if (!fresh.has(key)) {
        this.store.delete(key);
        for (const h of this.handlers) h.delete?.(old);
      }
    }
    for (const [key, obj] of fresh) this.upsert(key, obj);
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    this.store.set(key, obj);
    if (!old) for (const h of this.handlers) h.add?.(obj);
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) for (const h of this.handlers) h.update?.(old, obj);
  }

  private get idleTimeoutMs(): number {
    return this.options.watchIdleTimeoutMs ?? WATCH_IDLE_TIMEOUT_MS;
  }

  private async watchOnce(signal: AbortSignal): Promise<void> {
    let gone = false;
    let events = 0;
    const startedAt = Date.now();
    const timeout = this.options.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300);
    // Every line, bookmarks included, proves the stream alive; silence past the bound aborts it.
    const idle = new AbortController();
    let idleTimer: NodeJS.Timeout | undefined;
    const alive = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => idle.abort(), this.idleTimeoutMs);
    };
    alive();
    try {
      await this.options.client.watch(
        this.path,
        {
          resourceVersion: this.resourceVersion,
          allowWatchBookmarks: true,
          labelSelector: this.options.labelSelector,
          timeoutSeconds: timeout,
        },
        (type, raw) => {
          alive();
          if (type === "ERROR") {
            const status = raw as { code?: number; message?: string };
            if (status.code === 410) gone = true;
            else this.log.warn({ status }, "watch error event");
            return;
          }
          const obj = raw as T;
          const rv = obj.metadata?.resourceVersion;
          if (type === "BOOKMARK") {
            if (rv) this.resourceVersion = rv;
            return;
          }
          const item = this.transform(obj);
          const key = objectKey(item);
          if (type === "DELETED") {
            const old = this.store.get(key) ?? item;
            this.store.delete(key);
            for (const h of this.handlers) h.delete?.(old);
          } else {
            this.upsert(key, item);
          }
          if (rv) this.resourceVersion = rv;
          events++;
          this.backoff.reset();
        },
        AbortSignal.any([signal, idle.signal]),
      );
    } catch (err) {
      if (err instanceof KubeApiError && err.gone) throw new Gone();
      if (idle.signal.aborted && !signal.aborted) throw new WatchIdle();
      throw err;
    } finally {
      clearTimeout(idleTimer);
    }
    if (idle.signal.aborted && !signal.aborted) throw new WatchIdle();
    if (gone) throw new Gone();
    // A watch that ends at once with nothing in it is a failure in disguise (e.g. a proxy); back off.
    if (events === 0 && Date.now() - startedAt < 1_000) throw new Error("watch closed immediately");
  }
}

/** One informer per watched namespace behind one cache (for `--namespaces a,b`); undefined = all namespaces. */
export class NamespacedInformers<T extends KubeObject> implements ObjectCache<T> {
  private readonly byNamespace = new Map<string, Informer<T>>();

  constructor(namespaces: string[] | undefined, options: Omit<InformerOptions<T>, "namespace">) {
    for (const ns of namespaces ?? [""]) this.byNamespace.set(ns, new Informer<T>({ ...options, namespace: ns || undefined }));
  }

  private informers(): Informer<T>[] {
    return [...this.byNamespace.values()];
  }

  on(handlers: InformerHandlers<T>): void {
    for (const i of this.informers()) i.on(handlers);
  }

  get(key: string): T | undefined {
    const all = this.byNamespace.get("");
    if (all) return all.get(key);
    return this.byNamespace.get(key.slice(0, key.indexOf("/")))?.get(key);
  }

  list(): T[] {
    return this.informers().flatMap((i) => i.list());
  }

  get size(): number {
    return this.informers().reduce((n, i) => n + i.size, 0);
  }

  hasSynced(): boolean {
    return this.informers().every((i) => i.hasSynced());
  }

  async waitForSync(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.informers().map((i) => i.waitForSync(signal)));
  }

  get recoveries(): number {
    return this.informers().reduce((n, i) => n + i.recoveries, 0);
  }

  start(): void {
    for (const i of this.informers()) i.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
  }
}
