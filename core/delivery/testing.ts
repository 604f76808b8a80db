/**
 * Test doubles for delivery: a small HS256 signer and a destination whose answers are scripted.
 */
import { SignJWT } from 'jose';
import type { DeliveryReceipt, SignedSet, SigningTarget } from '../plugin-api/types.ts';
import type { StoredEvent } from '../storage/types.ts';
import type { DestinationPolicyOverride } from './config.ts';
import type { Destination, DestinationInfo, SetSigner } from './types.ts';

const TEST_KEY = new TextEncoder().encode('ssf-bridge-test-signing-key-0123456789');

/** Signs SETs with HS256 and claims that depend only on the event, destination and jti. */
export function testSigner(issuer = 'https://bridge.test'): SetSigner {
  return {
    async sign(event: StoredEvent, destination: DestinationInfo, delivery: { jti: string; attempt: number }) {
      const claims = {
        iss: issuer,
        iat: Math.floor(event.acceptedAt.getTime() / 1000),
        jti: delivery.jti,
        aud: destination.target.audience,
        txn: event.txn,
        sub_id: event.subject,
        events: { [event.type]: event.claims },
      };
      const jwt = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'secevent+jwt' })
        .sign(TEST_KEY);
      const set: SignedSet = {
        jwt,
        jti: delivery.jti,
        claims,
        eventType: event.type,
        event: event.claims,
        subject: event.subject,
        attempt: delivery.attempt,
      };
      return set;
    },
  };
}

/** One scripted answer: a receipt, an error to throw, or a function deciding per call. */
export type Answer =
  DeliveryReceipt | Error | ((set: SignedSet, signal: AbortSignal) => Promise<DeliveryReceipt>);

export interface DeliveryCall {
  jti: string;
  attempt: number;
  subject: unknown;
  at: number;
}

/**
 * A destination that answers from a script (then with `fallback`), records every call, and
 * tracks how many calls were in flight at once.
 */
export class ScriptedDestination implements Destination {
  readonly kind = 'outbound' as const;
  readonly target: SigningTarget;
  readonly calls: DeliveryCall[] = [];
  readonly delivered: string[] = [];
  paused = false;
  inFlight = 0;
  maxInFlight = 0;
  readonly #script: Answer[];

  constructor(
    readonly id: string,
    script: Answer[] = [],
    readonly fallback: Answer = { status: 202 },
    readonly policy: DestinationPolicyOverride = {},
  ) {
    this.target = { audience: `https://${id}.example` };
    this.#script = [...script];
  }

  /** Adds answers to the end of the script. */
  answer(...answers: Answer[]): this {
    this.#script.push(...answers);
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  async deliver(set: SignedSet, signal: AbortSignal): Promise<DeliveryReceipt> {
    const answer = this.#script.shift() ?? this.fallback;
    this.calls.push({
      jti: set.jti,
      attempt: set.attempt,
      subject: set.subject,
      at: Date.now(),
    });
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (answer instanceof Error) throw answer;
      const receipt = typeof answer === 'function' ? await answer(set, signal) : answer;
      this.delivered.push(set.jti);
      return receipt;
    } finally {
      this.inFlight -= 1;
    }
  }
}

/** A promise with its resolve and reject exposed. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
