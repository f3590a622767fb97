import { describe, expect, it } from 'vitest';
import { Backoff } from './backoff';

describe('Backoff', () => {
  it('doubles from the base up to the cap, at the top of its range with random() = 1', () => {
    const b = new Backoff({ baseMs: 500, capMs: 4000, random: () => 1 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
  });

  it('never waits less than half the ceiling, with random() = 0', () => {
    const b = new Backoff({ baseMs: 500, capMs: 4000, random: () => 0 });
    expect([b.next(), b.next(), b.next(), b.next()]).toEqual([250, 500, 1000, 2000]);
  });

  it('jitters within [d/2, d] and stays under the cap after many failures', () => {
    const b = new Backoff({ baseMs: 500, capMs: 30_000 });
    for (let i = 0; i < 100; i++) {
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(Math.min(30_000, 500 * 2 ** i) / 2 - 1);
      expect(d).toBeLessThanOrEqual(30_000);
    }
  });

  it('starts again from the base after a reset', () => {
    const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 1 });
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(100);
    expect(b.failures).toBe(1);
  });
});
