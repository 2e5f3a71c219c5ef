// A progress bar on stderr while a run is measured (cli-progress), or nothing when stderr is
// not a terminal, so logs and CI output stay clean.
import cliProgress from 'cli-progress';

export class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private label = '';

  constructor(private readonly enabled = process.stderr.isTTY === true) {}

  update(label: string, fraction: number, detail: string): void {
    if (!this.enabled) return;
    if (label !== this.label) {
      this.bar?.stop();
      this.label = label;
      this.bar = new cliProgress.SingleBar(
        { format: `{label} [{bar}] {percentage}% | {detail}`, stream: process.stderr, hideCursor: true, clearOnComplete: true, barsize: 24 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(100, 0, { label: label.length > 70 ? `${label.slice(0, 67)}...` : label, detail });
    }
    this.bar!.update(Math.round(fraction * 100), { detail });
  }

  /** Ends the current bar and prints one line about the finished run. */
  done(line: string): void {
    this.bar?.stop();
    this.bar = undefined;
    this.label = '';
    process.stderr.write(`${line}\n`);
  }
}
