/** The flags that sign (`--sign KEY`, `--sign-partition`, `--passphrase-stdin`), read before anything is pushed. */
import type { SigningKey } from "../../../core/sign/ecdsa.ts";
import { readSigningKey } from "../sign/key-files.ts";
import { InputError } from "../spec/errors.ts";
import type { RegistryFlags } from "./registry-flags.ts";

export interface SigningFlags extends RegistryFlags {
  sign?: string;
  signPartition?: string[];
  passphraseStdin?: boolean;
}

/**
 * The signing key, when the command signs: read (and decrypted) first, so that a wrong passphrase
 * or a bad key file stops the command before it pushes anything.
 */
export async function signingKeyOf(flags: SigningFlags): Promise<SigningKey | undefined> {
  if (flags.passphraseStdin && flags.passwordStdin) {
    throw new InputError("--passphrase-stdin and --password-stdin both read stdin: give the other one another way");
  }
  if (!flags.sign) {
    if (flags.signPartition?.length) throw new InputError("--sign-partition needs --sign KEY");
    return undefined;
  }
  return readSigningKey(flags.sign, { passphraseStdin: flags.passphraseStdin === true });
}
