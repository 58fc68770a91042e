/** Request ids: a prefix drawn once per client, then a counter. */
export class RequestIds {
  private readonly prefix = Math.random().toString(36).slice(2, 8);
  private counter = 0;

  /** How many ids were handed out. */
  get issued(): number {
    return this.counter;
  }

  next(): string {
    return `${this.prefix}_${++this.counter}`;
  }
}
