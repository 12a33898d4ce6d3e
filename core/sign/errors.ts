/**
 * A key or signature input the user must fix: a malformed key file, a wrong passphrase, a public
 * key given where a private one is needed. The CLI answers it with exit 2; the Worker refuses to
 * start signing and says why.
 */
export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeyError";
  }
}
