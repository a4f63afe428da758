import { describe, expect, it } from "vitest";
import { decideLease, LeaderElector, nextLeaseSpec } from "../../../src/kube/leader-election.js";
import { microTime } from "../../../src/kube/events.js";
import pino from "pino";

const ME = "operator-a";
const LEASE = 15_000;

describe("who may take the Lease", () => {
  it("creates it when there is none", () => {
    expect(decideLease(undefined, 0, 0, ME, LEASE)).toEqual({ action: "create" });
  });

  it("renews a Lease it holds, whatever the clocks say", () => {
    expect(decideLease({ holderIdentity: ME, leaseDurationSeconds: 15 }, 0, 1e9, ME, LEASE)).toEqual({ action: "renew" });
  });

  it("takes a released Lease at once", () => {
    expect(decideLease({ holderIdentity: "", leaseDurationSeconds: 1 }, 1000, 1000, ME, LEASE)).toEqual({ action: "acquire" });
  });

  it("waits while another holder's Lease is fresh on our own clock, and takes it once it expired", () => {
    const held = { holderIdentity: "operator-b", leaseDurationSeconds: 15, renewTime: "1999-01-01T00:00:00.000000Z" };
    // renewTime is decades old on the holder's clock, but we first saw this record 5 s ago: still valid.
    expect(decideLease(held, 10_000, 15_000, ME, LEASE)).toEqual({ action: "wait", holder: "operator-b", expiresInMs: 10_000 });
    expect(decideLease(held, 10_000, 25_001, ME, LEASE)).toEqual({ action: "acquire" });
  });

  it("honours the holder's own lease duration over ours", () => {
    const held = { holderIdentity: "operator-b", leaseDurationSeconds: 60 };
    expect(decideLease(held, 0, 30_000, ME, LEASE).action).toBe("wait");
  });
});

describe("the Lease we write", () => {
  const t0 = new Date("2026-11-26T12:00:00.123Z");
  const t1 = new Date("2026-11-26T12:00:10.456Z");

  it("counts a transition when leadership changes hands, not when the leader renews", () => {
    const created = nextLeaseSpec(undefined, ME, LEASE, t0);
    expect(created).toEqual({
      holderIdentity: ME,
      leaseDurationSeconds: 15,
      acquireTime: "2026-11-26T12:00:00.123000Z",
      renewTime: "2026-11-26T12:00:00.123000Z",
      leaseTransitions: 0,
    });
    const renewed = nextLeaseSpec(created, ME, LEASE, t1);
    expect(renewed.acquireTime).toBe(created.acquireTime);
    expect(renewed.renewTime).toBe(microTime(t1));
    expect(renewed.leaseTransitions).toBe(0);
    const taken = nextLeaseSpec(renewed, "operator-b", LEASE, t1);
    expect(taken.leaseTransitions).toBe(1);
    expect(taken.acquireTime).toBe(microTime(t1));
  });
});

describe("timings", () => {
  it("refuses timings where a leader could lose the Lease before it gives up leading", () => {
    expect(
      () =>
        new LeaderElector(
          {
            client: undefined as never,
            namespace: "ns",
            name: "l",
            identity: ME,
            logger: pino({ enabled: false }),
            leaseDurationMs: 10_000,
            renewDeadlineMs: 10_000,
          },
          { onStartedLeading: () => {}, onStoppedLeading: () => {} },
        ),
    ).toThrow(/leaseDuration > renewDeadline > retryPeriod/);
  });
});
