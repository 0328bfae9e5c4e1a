/** How the pauses between the attempts of a retried request grow: doubling from `firstMs`, up to `maxMs`. */
export interface Backoff {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** The pauses of a backoff, one per retry: `firstMs`, twice that, … capped at `maxMs`; never ends. */
export function* backoffPauses({ firstMs, maxMs }: Backoff): Generator<number, never, undefined> {
  for (let pause = firstMs; ; pause = Math.min(pause * 2, maxMs)) yield pause;
}
