/**
 * The passphrase of a cosign key: from stdin (`--passphrase-stdin`), else the environment
 * (TDFS_KEY_PASSPHRASE, or COSIGN_PASSWORD as cosign reads it), else a prompt at the terminal
 * with echo off. A script with none of these fails at once instead of hanging on a prompt.
 */
import { text } from "node:stream/consumers";
import { KeyError } from "../../../core/sign/errors.ts";

export const PASSPHRASE_ENV = "TDFS_KEY_PASSPHRASE";
const COSIGN_ENV = "COSIGN_PASSWORD";

export interface PassphraseOptions {
  stdin?: boolean;
  /** Ask twice at a terminal (for a new key). */
  confirm?: boolean;
  /** What the prompt asks for. */
  prompt: string;
}

/** Passphrases are read once per command, whatever asks. */
let fromStdin: Promise<string> | undefined;

export async function readPassphrase(opts: PassphraseOptions): Promise<string> {
  if (opts.stdin) {
    fromStdin ??= text(process.stdin).then((s) => s.replace(/\r?\n$/, ""));
    return fromStdin;
  }
  const env = process.env[PASSPHRASE_ENV] ?? process.env[COSIGN_ENV];
  if (env !== undefined) return env;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new KeyError(`no passphrase: give --passphrase-stdin or set ${PASSPHRASE_ENV} (no terminal to ask at)`);
  }
  const first = await prompt(`${opts.prompt}: `);
  if (opts.confirm && (await prompt(`${opts.prompt} again: `)) !== first) {
    throw new KeyError("the two passphrases differ");
  }
  return first;
}

/** One line from the terminal, not echoed. */
function prompt(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let line = "";
    const done = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(line);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") return done();
        if (ch === "\u0003") return done(new KeyError("interrupted"));
        if (ch === "\u007f" || ch === "\b") line = line.slice(0, -1);
        else line += ch;
      }
    };
    stdin.on("data", onData);
  });
}
