/** What the peer tests share: a peer that must be there, addresses, time windows. */
import { accessSync, constants } from 'node:fs';
import { expect } from 'vitest';

/** Fails (never skips) when a peer binary is missing. */
export const requireBinary = (path: string): void => {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing: run scripts/install-test-deps.sh`);
  }
};

export const portOf = (address: string): string => address.slice(address.lastIndexOf(':') + 1);

/** A record's time lies in [from, to], to the precision its format has. */
export const expectTime = (time: number, from: number, to: number, precisionMs: number): void => {
  expect(time).toBeGreaterThanOrEqual(Math.floor(from / precisionMs) * precisionMs);
  expect(time).toBeLessThanOrEqual(to);
};
