/**
 * Undo steps (stop the apps, stop etcd) run once, newest first, whether the demo ends normally,
 * fails, or is interrupted.
 */
export class CleanupStack {
  private readonly steps: Array<() => Promise<unknown>> = [];
  private running: Promise<void> | undefined;

  push(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of [...this.steps].reverse()) {
        try {
          await step();
        } catch (err) {
          console.error(`cleanup step failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    })();
    return this.running;
  }

  /**
   * On Ctrl-C or SIGTERM: clean up, then exit 130 / 143. A second signal exits at once; the
   * launchers' exit hooks still SIGKILL whatever is left.
   */
  runOnSignals(): void {
    const signals: Array<[NodeJS.Signals, number]> = [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ];
    for (const [signal, code] of signals) {
      process.on(signal, () => {
        if (this.running) process.exit(code);
        console.error(`\n${signal}: stopping everything the demo started...`);
        void this.run().finally(() => process.exit(code));
      });
    }
  }
}
