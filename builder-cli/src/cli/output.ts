/**
 * How results reach the user: `--json` prints one JSON document on stdout for machines;
 * otherwise lines of text, with progress bars only when stderr is a terminal.
 */
export interface Output {
  readonly json: boolean;
  readonly tty: boolean;
  /** A line of human output (suppressed under --json). */
  line(text: string): void;
  /** The command's result: printed as JSON under --json, else handed to `human`. */
  result<T>(value: T, human: (value: T) => void): void;
}

export function createOutput(json: boolean): Output {
  return {
    json,
    tty: !json && process.stderr.isTTY === true,
    line(text) {
      if (!json) process.stdout.write(`${text}\n`);
    },
    result(value, human) {
      if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else human(value);
    },
  };
}
