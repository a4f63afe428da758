// How the demo talks: numbered steps, the kubectl commands it runs (so a person can re-run them), results.
export class Narrator {
  private readonly started = Date.now();
  private stepStarted = Date.now();

  constructor(
    private readonly write: (line: string) => void,
    private readonly totalSteps: number,
  ) {}

  step(n: number, title: string): void {
    this.stepStarted = Date.now();
    this.write("");
    this.write(`[${n}/${this.totalSteps}] ${title}`);
  }

  say(line: string): void {
    this.write(`  ${line}`);
  }

  command(display: string): void {
    this.write(`  $ ${display}`);
  }

  /** Command output or details, indented under what produced them. */
  block(text: string): void {
    for (const line of text.replace(/\s+$/, "").split("\n")) this.write(`    ${line}`);
  }

  ok(line: string): void {
    this.write(`  ✓ ${line} (${this.seconds(this.stepStarted)})`);
  }

  fail(line: string): void {
    this.write(`  ✗ ${line}`);
  }

  plain(line = ""): void {
    this.write(line);
  }

  seconds(since = this.started): string {
    return `${((Date.now() - since) / 1000).toFixed(1)} s`;
  }
}
