/**
 * The entries of a tar archive, from its headers alone. A `ByteSource` serves byte ranges: for a
 * plain tar stored in R2 each range is a ranged read, so a layer of large model files costs a
 * few small reads however big the files are; for a compressed tar the ranges come out of the
 * decompressed stream in order. Reads the ustar, PAX (`x`) and GNU long-name (`L`, `K`) headers
 * that real builders write.
 */

export interface TarEntry {
  path: string;
  size: number;
  type: "file" | "dir" | "symlink" | "hardlink" | "other";
  /** A link's target. */
  target?: string;
}

export interface ByteSource {
  /** `length` bytes from `offset`, fewer at the end of the data. Offsets never go backwards. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarError";
  }
}

const BLOCK = 512;
/** Long names and PAX records are small; a larger one is not a header we should read. */
const META_MAX = 64 * 1024;
const latin = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");

export async function listTar(
  source: ByteSource,
  maxEntries: number,
): Promise<{ entries: TarEntry[]; truncated: boolean }> {
  const entries: TarEntry[] = [];
  let offset = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const header = await source.read(offset, BLOCK);
    if (header.length < BLOCK || header.every((b) => b === 0)) return { entries, truncated: false };
    checkChecksum(header, offset);
    const size = pax.size !== undefined ? Number(pax.size) : numeric(header.subarray(124, 136));
    const flag = String.fromCharCode(header[156] ?? 0);
    const dataAt = offset + BLOCK;
    offset = dataAt + Math.ceil(size / BLOCK) * BLOCK;
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > META_MAX) throw new TarError(`a ${flag} header of ${size} bytes is too large`);
      const data = (await source.read(dataAt, size)).subarray(0, size);
      if (flag === "x") pax = { ...pax, ...paxRecords(data) };
      else if (flag === "L") longName = cString(data, utf8);
      else if (flag === "K") longLink = cString(data, utf8);
      continue;
    }
    if (entries.length === maxEntries) return { entries, truncated: true };
    const ustar = latin.decode(header.subarray(257, 262)) === "ustar";
    const name = cString(header.subarray(0, 100), utf8);
    const prefix = ustar ? cString(header.subarray(345, 500), utf8) : "";
    const path = pax.path ?? longName ?? (prefix ? `${prefix}/${name}` : name);
    const target = pax.linkpath ?? longLink ?? cString(header.subarray(157, 257), utf8);
    const entry: TarEntry = { path: clean(path), size, type: typeOf(flag, path) };
    if (entry.type === "symlink" || entry.type === "hardlink") entry.target = target;
    entries.push(entry);
    pax = {};
    longName = undefined;
    longLink = undefined;
  }
}

function typeOf(flag: string, path: string): TarEntry["type"] {
  if (flag === "0" || flag === "\0" || flag === "7") return path.endsWith("/") ? "dir" : "file";
  if (flag === "5") return "dir";
  if (flag === "2") return "symlink";
  if (flag === "1") return "hardlink";
  return "other";
}

function clean(path: string): string {
  return path.replace(/^(\.\/|\/)+/, "").replace(/\/$/, "") || ".";
}

function cString(bytes: Uint8Array, decoder: { decode(b: Uint8Array): string }): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** An octal number field, or GNU's base-256 form for sizes past 8 GiB. */
function numeric(field: Uint8Array): number {
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let n = (field[0] ?? 0) & 0x7f;
    for (const b of field.subarray(1)) n = n * 256 + b;
    return n;
  }
  const text = latin.decode(field).replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`not a tar header: numeric field "${text.slice(0, 12)}"`);
  return parseInt(text, 8);
}

/** Every header carries the sum of its bytes (the checksum field counted as spaces). */
function checkChecksum(header: Uint8Array, offset: number): void {
  const stored = numeric(header.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : (header[i] ?? 0);
  if (sum !== stored) throw new TarError(`not a tar header at byte ${offset}`);
}

/** PAX records: `<length> <key>=<value>\n`, the length counting the whole record. */
function paxRecords(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const length = Number(latin.decode(data.subarray(at, space)));
    if (!Number.isInteger(length) || length <= 0 || at + length > data.length) break;
    const record = utf8.decode(data.subarray(space + 1, at + length - 1));
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return out;
}

/**
 * Ranges of one stored object, read in windows: headers of small files share one read, and a
 * large file's data is skipped without being read. At most `maxReads` reads.
 */
export function rangedSource(
  readRange: (offset: number, length: number) => Promise<Uint8Array>,
  size: number,
  window: number,
  maxReads: number,
): ByteSource {
  let start = 0;
  let buffer: Uint8Array = new Uint8Array(0);
  let reads = 0;
  return {
    async read(offset, length) {
      if (offset >= size) return new Uint8Array(0);
      const end = Math.min(offset + length, size);
      if (offset < start || end > start + buffer.length) {
        if (++reads > maxReads) throw new TarLimit();
        start = offset;
        buffer = await readRange(offset, Math.min(size, offset + Math.max(length, window)) - offset);
      }
      return buffer.subarray(offset - start, end - start);
    },
  };
}

/** The ranges of a stream read front to back (a decompressed layer): skipped bytes are dropped as they pass. */
export function streamSource(stream: ReadableStream<Uint8Array>): ByteSource & { close(): Promise<void> } {
  const reader = stream.getReader();
  let position = 0; // offset of buffer[0]
  let buffer: Uint8Array = new Uint8Array(0);
  let done = false;
  return {
    async read(offset, length) {
      while (!done && position + buffer.length < offset + length) {
        const r = await reader.read();
        if (r.done) {
          done = true;
          break;
        }
        // Keep only what is at or past `offset`: data being skipped is never held.
        const joined = concat(buffer, r.value);
        const drop = Math.max(0, Math.min(offset - position, joined.length));
        buffer = joined.subarray(drop);
        position += drop;
      }
      const from = Math.max(0, offset - position);
      return buffer.subarray(from, from + length);
    },
    close: () => reader.cancel().catch(() => undefined),
  };
}

/** Thrown when a listing would take more reads than allowed. */
export class TarLimit extends Error {
  constructor() {
    super("too many reads");
    this.name = "TarLimit";
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
