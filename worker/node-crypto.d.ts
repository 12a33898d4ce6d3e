/**
 * The one Node API the Worker uses, from workerd's nodejs_compat: scrypt, native, to open the
 * registry's cosign key once per isolate (worker/signing/settings.ts). Declared here rather than
 * through @types/node, whose globals would clash with the Workers types.
 */
declare module "node:crypto" {
  export function scrypt(
    password: Uint8Array,
    salt: Uint8Array,
    keylen: number,
    options: { N: number; r: number; p: number; maxmem: number },
    callback: (err: Error | null, derivedKey: Uint8Array) => void,
  ): void;
}
