/**
 * The replay buffer: the last `capacity` items, oldest first, in a fixed array (no growth, no shifting).
 */
export class Ring<T> {
  private readonly items: (T | undefined)[];
  private start = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0)
      throw new RangeError(`ring capacity must be a whole number, got ${capacity}`);
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(item: T): void {
    if (this.capacity === 0) return;
    if (this.count < this.capacity) {
      this.items[(this.start + this.count) % this.capacity] = item;
      this.count++;
      return;
    }
    this.items[this.start] = item;
    this.start = (this.start + 1) % this.capacity;
  }

  /** The newest `max` items that pass `keep`, oldest first. */
  last(max: number, keep: (item: T) => boolean = () => true): T[] {
    const picked: T[] = [];
    for (let i = this.count - 1; i >= 0 && picked.length < max; i--) {
      const item = this.items[(this.start + i) % this.capacity] as T;
      if (keep(item)) picked.push(item);
    }
    return picked.reverse();
  }
}
