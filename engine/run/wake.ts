/** Wakes a waiting loop (the CLI's delivery pipeline, a fleet worker); a notify with nobody waiting is remembered, so a wake-up is never lost. */
export class Wake {
  private waiters: (() => void)[] = [];
  private pending = false;

  wait(): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((r) => this.waiters.push(r));
  }

  notify(): void {
    if (!this.waiters.length) {
      this.pending = true;
      return;
    }
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
