/** `key generate [--output DIR]`: cosign.key and cosign.pub, as `cosign generate-key-pair` writes them. */
import path from "node:path";
import { generateKeyFiles } from "../../sign/key-files.ts";
import { readPassphrase } from "../../sign/passphrase.ts";
import { createOutput } from "../output.ts";

export interface KeyGenerateFlags {
  output: string;
  passphraseStdin?: boolean;
  json?: boolean;
}

export async function keyGenerateCommand(flags: KeyGenerateFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const passphrase = await readPassphrase({
    stdin: flags.passphraseStdin === true,
    confirm: true,
    prompt: "passphrase for the new private key",
  });
  const keys = await generateKeyFiles(path.resolve(flags.output), passphrase);
  out.result(keys, (k) =>
    process.stdout.write(
      `private key written to ${k.privateKey}\npublic key written to ${k.publicKey}\nfingerprint ${k.fingerprint}\n`,
    ),
  );
}
