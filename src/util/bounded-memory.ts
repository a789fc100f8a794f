/**
 * A map that forgets its oldest entries (insertion order) beyond a capacity: memory of what must never come back
 * (instances whose workspace left) that cannot grow for ever. Forgetting only risks ignoring ancient duplicates.
 */
export class BoundedMemory<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.map.size;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }
}
