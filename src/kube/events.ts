// An events.k8s.io/v1 recorder. Repeats of the same event (same object, reason, action, note) are
// folded into one Event's `series` instead of new objects, so a crash-looping reconcile cannot flood etcd.
import type { Logger } from "pino";
import { PatchType, resourcePath, type KubeClient, type KubeObject, type ResourceType } from "./client.js";

export const EVENTS_RESOURCE: ResourceType = { group: "events.k8s.io", version: "v1", plural: "events", namespaced: true };

export type EventType = "Normal" | "Warning";

export interface EventRecord {
  type: EventType;
  /** CamelCase, machine-readable why (e.g. `Created`, `PVCNotFound`). */
  reason: string;
  /** What the controller did or failed to do (e.g. `Apply`, `Scale`, `Reconcile`). */
  action: string;
  /** Human-readable, at most 1 kB. */
  note: string;
}

/** metav1.MicroTime wants exactly six fractional digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

interface SeriesEntry {
  name: string;
  namespace: string;
  count: number;
  firstAt: number;
}

const SERIES_WINDOW_MS = 30 * 60_000;
const MAX_TRACKED = 4096;

export class EventRecorder {
  private readonly series = new Map<string, SeriesEntry>();
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly client: KubeClient,
    readonly reportingController: string,
    readonly reportingInstance: string,
    private readonly logger: Logger,
  ) {}

  /** Fire and forget: an Event that cannot be written is logged, never fails the reconcile. */
  record(regarding: KubeObject, ev: EventRecord): void {
    const p = this.write(regarding, ev).catch((err: unknown) =>
      this.logger.warn(
        { err: String(err), namespace: regarding.metadata?.namespace, name: regarding.metadata?.name, reason: ev.reason },
        "could not record event",
      ),
    );
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Waits for the events recorded so far to be written (shutdown, tests). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private async write(regarding: KubeObject, ev: EventRecord): Promise<void> {
    const m = regarding.metadata ?? {};
    const namespace = m.namespace ?? "default";
    const key = [m.uid ?? `${namespace}/${m.name}`, ev.type, ev.reason, ev.action, ev.note].join("\u0000");
    const now = Date.now();
    const prior = this.series.get(key);
    if (prior && now - prior.firstAt < SERIES_WINDOW_MS) {
      prior.count++;
      try {
        await this.client.patch(
          resourcePath(EVENTS_RESOURCE, prior.namespace, prior.name),
          { series: { count: prior.count, lastObservedTime: microTime(new Date(now)) } },
          PatchType.merge,
        );
        return;
      } catch {
        // The Event expired (TTL) or was deleted: start a new one.
        this.series.delete(key);
      }
    }
    const name = `${m.name ?? "object"}.${now.toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    await this.client.create(resourcePath(EVENTS_RESOURCE, namespace), {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: { name, namespace },
      eventTime: microTime(new Date(now)),
      reportingController: this.reportingController,
      reportingInstance: this.reportingInstance,
      action: ev.action,
      reason: ev.reason,
      type: ev.type,
      note: ev.note.slice(0, 1024),
      regarding: {
        apiVersion: regarding.apiVersion,
        kind: regarding.kind,
        name: m.name,
        namespace,
        uid: m.uid,
        resourceVersion: m.resourceVersion,
      },
    });
    if (this.series.size >= MAX_TRACKED) this.series.delete(this.series.keys().next().value as string);
    this.series.set(key, { name, namespace, count: 1, firstAt: now });
  }
}
