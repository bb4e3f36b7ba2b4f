/**
 * A periodic job that never overlaps itself: `tick` runs `everyMs` after the previous run settled, until
 * `stop`. The timer does not keep the process alive. Extensions use it for their "anything due?" looks
 * (alerting's receivers and service rules, logs' windows).
 */
export class Ticker {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;

  constructor(
    private readonly everyMs: number,
    private readonly tick: () => Promise<void>,
  ) {}

  start(): void {
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.tick().finally(() => {
        if (this.running) this.schedule();
      });
    }, this.everyMs);
    this.timer.unref?.();
  }
}
