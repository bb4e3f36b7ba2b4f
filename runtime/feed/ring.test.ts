import { describe, expect, it } from 'vitest';
import { Ring } from './ring.ts';

describe('Ring', () => {
  it('keeps the last capacity items, oldest first', () => {
    const r = new Ring<number>(3);
    for (let i = 1; i <= 5; i++) r.push(i);
    expect(r.size).toBe(3);
    expect(r.last(10)).toEqual([3, 4, 5]);
    expect(r.last(2)).toEqual([4, 5]);
    expect(r.last(0)).toEqual([]);
  });

  it('picks the newest matching items', () => {
    const r = new Ring<number>(10);
    for (let i = 1; i <= 10; i++) r.push(i);
    expect(r.last(3, (n) => n % 2 === 1)).toEqual([5, 7, 9]);
  });

  it('holds nothing at capacity 0 and refuses a bad capacity', () => {
    const r = new Ring<number>(0);
    r.push(1);
    expect(r.last(5)).toEqual([]);
    expect(() => new Ring(-1)).toThrow(RangeError);
  });
});
