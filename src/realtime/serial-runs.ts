/**
 * Runs an async task one run at a time. Asked while a run is under way, it runs once more after
 * it, however often it was asked meanwhile: whatever prompted the last request is seen by a run
 * that started after it, and requests never pile up.
 */
export class SerialRuns {
  private running = false;
  private again = false;

  constructor(private readonly run: () => Promise<void>) {}

  /** Starts a run, or, during one, one more after it. Never rejects: the task handles its errors. */
  request(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    void this.runUntilSettled();
  }

  /** True during a run once it has been asked for again: what it is doing will be redone. */
  get askedAgain(): boolean {
    return this.again;
  }

  private async runUntilSettled(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        await this.run();
      } while (this.again);
    } finally {
      this.running = false;
    }
  }
}
