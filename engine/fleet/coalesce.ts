/**
 * Calls made in one turn of the event loop, grouped by key and handed over together: the settles of a burst
 * of answers become one Redis script call per integration instead of one each (fewer round trips, commands
 * and bytes for Redis and for the worker). Each caller still gets its own result or the batch's error.
 */
export class Coalescer<In, Out> {
  private readonly pending = new Map<string, { input: In; resolve: (o: Out) => void; reject: (e: unknown) => void }[]>();
  private scheduled = false;

  /** `flush` answers a batch's inputs in order (one result each); `max` bounds a batch (Lua's unpack limit). */
  constructor(private readonly flush: (key: string, inputs: In[]) => Promise<Out[]>, private readonly max = 500) {}

  add(key: string, input: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      const list = this.pending.get(key);
      if (list) list.push({ input, resolve, reject });
      else this.pending.set(key, [{ input, resolve, reject }]);
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: the answers already waiting in this poll phase join the batch.
        setImmediate(() => this.run());
      }
    });
  }

  private run(): void {
    this.scheduled = false;
    const batches = [...this.pending];
    this.pending.clear();
    for (const [key, items] of batches) {
      for (let i = 0; i < items.length; i += this.max) {
        const part = items.slice(i, i + this.max);
        this.flush(key, part.map((x) => x.input)).then(
          (outs) => part.forEach((x, j) => x.resolve(outs[j]!)),
          (e: unknown) => part.forEach((x) => x.reject(e)),
        );
      }
    }
  }
}
