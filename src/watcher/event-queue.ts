import type { Envelope } from "../containerd/events.js";

/**
 * Events in arrival order, handled one at a time (a /containers/create waits for its Containers/Get before the
 * next event is applied). Buffered until `run()`; a handler failure ends the round.
 */
export class EventQueue {
  private readonly items: Envelope[] = [];
  private running = false;
  private draining = false;
  private stopped = false;

  constructor(
    private readonly handle: (envelope: Envelope) => void | Promise<void>,
    private readonly fail: (error: unknown) => void,
  ) {}

  push(envelope: Envelope): void {
    if (this.stopped) return;
    this.items.push(envelope);
    if (this.running) void this.drain();
  }

  run(): void {
    this.running = true;
    void this.drain();
  }

  stop(): void {
    this.stopped = true;
    this.items.length = 0;
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let envelope = this.items.shift(); envelope && !this.stopped; envelope = this.items.shift()) {
        const pending = this.handle(envelope);
        if (pending) await pending; // only events that need I/O wait; the rest are applied at once, in order
      }
    } catch (error) {
      this.stopped = true;
      this.fail(error);
    } finally {
      this.draining = false;
    }
  }
}
