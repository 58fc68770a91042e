/**
 * What the clients of one workload received: one count per (client, seq), so that loss and
 * duplicates are exact. `expected(client)` says whether a client should get the messages at all.
 */
export class Receipts {
  private readonly counts: Uint8Array;
  unique = 0;
  duplicates = 0;
  /** Messages of this workload at a client that should not get them, or with a bad seq. */
  stray = 0;
  /** performance.now() of the last receipt. */
  last = 0;
  frameBytes = 0;

  constructor(
    readonly type: string,
    private readonly clients: number,
    private readonly messages: number,
    private readonly expected: (client: number) => boolean = () => true,
  ) {
    this.counts = new Uint8Array(clients * messages);
  }

  get expectedTotal(): number {
    let total = 0;
    for (let c = 0; c < this.clients; c++) if (this.expected(c)) total += this.messages;
    return total;
  }

  /** Counts `seq` at `client`; other types are ignored (late frames of an earlier workload). */
  record(client: number, type: string, data: unknown, bytes: number): void {
    if (type !== this.type) return;
    const seq = (data as { seq?: unknown } | undefined)?.seq;
    if (!this.expected(client) || typeof seq !== 'number' || !(seq >= 0 && seq < this.messages)) {
      this.stray++;
      return;
    }
    const at = client * this.messages + seq;
    if (this.counts[at] === 0) this.unique++;
    else this.duplicates++;
    this.counts[at] = Math.min(255, this.counts[at]! + 1);
    this.frameBytes = bytes;
    this.last = performance.now();
  }
}
