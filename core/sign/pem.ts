/** PEM blocks (RFC 7468): the armour of cosign's key files and of public keys. */
import { fromBase64, toBase64 } from "../encoding/base64.ts";
import { KeyError } from "./errors.ts";

export interface PemBlock {
  type: string;
  der: Uint8Array;
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** One block, base64 wrapped at 64 columns, with a final newline (as Go's pem.Encode writes it). */
export function encodePem(type: string, der: Uint8Array): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join("\n")}\n-----END ${type}-----\n`;
}

/** Every block of a text, in order; text around them is ignored, as openssl and Go do. */
export function decodePems(text: string, what: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK_RE)) {
    const body = (m[2] ?? "").replace(/\s+/g, "");
    const der = /^[A-Za-z0-9+/]*={0,2}$/.test(body) ? fromBase64(body) : undefined;
    if (!der || der.length === 0) throw new KeyError(`${what}: the ${m[1]} block is not base64`);
    blocks.push({ type: m[1] as string, der });
  }
  if (blocks.length === 0) throw new KeyError(`${what} is not a PEM file (no -----BEGIN ...----- block)`);
  return blocks;
}

/** The one block of a key file. */
export function decodePem(text: string, what: string): PemBlock {
  const blocks = decodePems(text, what);
  if (blocks.length > 1) throw new KeyError(`${what} holds ${blocks.length} PEM blocks; a key file holds one`);
  return blocks[0] as PemBlock;
}
