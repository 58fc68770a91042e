/**
 * Predicts how long a pass will take, so that a run skips what would not fit before its timeout.
 * A pass of a target at a C it already ran at takes about as long again (the slowest so far);
 * otherwise it is scaled from that target's slowest pass per client, then from any target's. Per
 * client alone overestimated the module fivefold: part of its pass (the interleaved rounds) does
 * not grow with C, so its 33 s at C = 1,000 predicted 163 s at C = 5,000, where it took 32-37 s,
 * and the third run's passes at C = 5,000 were skipped in a run that had minutes left.
 */
export class PassDurations {
  private readonly byPass = new Map<string, number>();
  private readonly perClientByTarget = new Map<string, number>();
  private perClient = 0;

  record(target: string, clients: number, ms: number): void {
    const key = `${target}@${clients}`;
    this.byPass.set(key, Math.max(this.byPass.get(key) ?? 0, ms));
    const perClient = ms / clients;
    this.perClientByTarget.set(
      target,
      Math.max(this.perClientByTarget.get(target) ?? 0, perClient),
    );
    this.perClient = Math.max(this.perClient, perClient);
  }

  ms(target: string, clients: number): number {
    const same = this.byPass.get(`${target}@${clients}`);
    if (same !== undefined) return same;
    return (this.perClientByTarget.get(target) ?? this.perClient) * clients;
  }
}
