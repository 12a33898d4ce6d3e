/**
 * An in-memory Bucket with R2's semantics where the storage layer relies on them: strongly
 * consistent single-key operations, conditional puts (`onlyIf` by etag or upload time, evaluated
 * atomically at commit), an etag that depends only on the content (as R2's MD5 etag does for
 * single-part objects: two equal bodies have equal etags), sha256 and sha512 verification on put, ranged gets,
 * and lexical listing with prefix, startAfter, cursor, limit, delimiter and include.
 *
 * It exists for the interleaving harness: every operation first awaits `gate(op, key)`, where a
 * test scheduler can park the caller and choose which concurrent operation runs next. The
 * contract suite (test/worker/store-contract.test.ts) runs against it and against miniflare's R2.
 */
import { toHex } from "../../core/oci/digest.ts";
import type { Bucket } from "./bucket.ts";

interface Entry {
  key: string;
  bytes: Uint8Array;
  etag: string;
  uploaded: number;
  version: string;
  httpMetadata: R2HTTPMetadata;
  customMetadata: Record<string, string>;
}

export interface MemoryBucketOptions {
  /** The clock for `uploaded` (ms); the harness uses a logical one. */
  now?: () => number;
  /** Awaited at the start of every operation: where a scheduler interleaves concurrent callers. */
  gate?: (op: string, key: string) => Promise<void>;
}

export class MemoryBucket implements Bucket {
  private readonly objects = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly gate: (op: string, key: string) => Promise<void>;
  /** Every operation, in the order it ran: what a failing interleaving prints. */
  readonly trace: string[] = [];

  constructor(options: MemoryBucketOptions = {}) {
    this.now = options.now ?? (() => Date.now());
    this.gate = options.gate ?? (async () => undefined);
  }

  /** Every key, sorted (for invariant checks; not part of the Bucket interface). */
  keys(): string[] {
    return [...this.objects.keys()].sort();
  }

  async head(key: string): Promise<R2Object | null> {
    await this.step("head", key);
    const e = this.objects.get(key);
    return e ? describe(e) : null;
  }

  async get(key: string, options: R2GetOptions = {}): Promise<R2ObjectBody | null> {
    await this.step("get", key);
    const e = this.objects.get(key);
    if (!e) return null;
    if (options.onlyIf && !holds(toConditional(options.onlyIf), e)) return null;
    const range = resolveRange(options.range, e.bytes.byteLength);
    return withBody(e, e.bytes.subarray(range.offset, range.offset + range.length), range);
  }

  async put(
    key: string,
    value: ReadableStream | ArrayBuffer | ArrayBufferView | string | null,
    options: R2PutOptions = {},
  ): Promise<R2Object | null> {
    await this.step("put", key);
    const bytes = await toBytes(value);
    for (const [option, hash] of [
      ["sha256", "SHA-256"],
      ["sha512", "SHA-512"],
    ] as const) {
      const checksum = options[option];
      if (checksum === undefined) continue;
      const want =
        typeof checksum === "string"
          ? checksum
          : toHex(new Uint8Array(ArrayBuffer.isView(checksum) ? checksum.buffer : checksum));
      const got = toHex(await crypto.subtle.digest(hash, bytes as Uint8Array<ArrayBuffer>));
      if (got !== want) throw new Error(`put: The ${hash} checksum you specified did not match what we received.`);
    }
    // The condition is judged when the write commits, as R2 does: after the body has arrived.
    const current = this.objects.get(key);
    if (options.onlyIf && !holds(toConditional(options.onlyIf), current)) return null;
    const etag = toHex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)).slice(0, 32);
    const entry: Entry = {
      key,
      bytes,
      etag,
      uploaded: this.now(),
      version: crypto.randomUUID(),
      httpMetadata: options.httpMetadata instanceof Headers ? {} : { ...(options.httpMetadata ?? {}) },
      customMetadata: { ...(options.customMetadata ?? {}) },
    };
    this.objects.set(key, entry);
    return describe(entry);
  }

  async delete(keys: string | string[]): Promise<void> {
    const list = Array.isArray(keys) ? keys : [keys];
    await this.step("delete", list.join(","));
    for (const k of list) this.objects.delete(k);
  }

  async list(options: R2ListOptions = {}): Promise<R2Objects> {
    const prefix = options.prefix ?? "";
    await this.step("list", prefix);
    const limit = Math.min(options.limit ?? 1000, 1000);
    const after = options.cursor ?? options.startAfter;
    const objects: R2Object[] = [];
    const delimited = new Set<string>();
    let last: string | undefined;
    let truncated = false;
    for (const key of this.keys()) {
      if (!key.startsWith(prefix) || (after !== undefined && key <= after)) continue;
      if (objects.length + delimited.size >= limit) {
        truncated = true;
        break;
      }
      const rest = key.slice(prefix.length);
      const cut = options.delimiter ? rest.indexOf(options.delimiter) : -1;
      if (cut >= 0) {
        const p = prefix + rest.slice(0, cut + options.delimiter!.length);
        if (!delimited.has(p)) delimited.add(p);
        // The cursor moves past every key under a folded prefix.
        last = p + "\uffff";
        continue;
      }
      const e = this.objects.get(key)!;
      const d = describe(e);
      const include = options.include ?? [];
      objects.push({
        ...d,
        httpMetadata: include.includes("httpMetadata") ? d.httpMetadata : undefined,
        customMetadata: include.includes("customMetadata") ? d.customMetadata : undefined,
      } as R2Object);
      last = key;
    }
    return truncated && last !== undefined
      ? { objects, delimitedPrefixes: [...delimited], truncated: true, cursor: last }
      : { objects, delimitedPrefixes: [...delimited], truncated: false };
  }

  private async step(op: string, key: string): Promise<void> {
    await this.gate(op, key);
    this.trace.push(`${op} ${key}`);
  }
}

function toConditional(c: R2Conditional | Headers): R2Conditional {
  if (!(c instanceof Headers)) return c;
  const out: R2Conditional = {};
  const im = c.get("if-match");
  const inm = c.get("if-none-match");
  if (im) out.etagMatches = im.replaceAll('"', "");
  if (inm) out.etagDoesNotMatch = inm.replaceAll('"', "");
  return out;
}

/** R2's conditional semantics; `*` matches any existing object. */
function holds(c: R2Conditional, e: Entry | undefined): boolean {
  const matches = (want: string) => want === "*" || want === e?.etag;
  if (c.etagMatches !== undefined && !(e && matches(c.etagMatches))) return false;
  if (c.etagDoesNotMatch !== undefined && e && matches(c.etagDoesNotMatch)) return false;
  if (c.uploadedBefore !== undefined && e && !(e.uploaded < c.uploadedBefore.getTime())) return false;
  if (c.uploadedAfter !== undefined && (!e || !(e.uploaded > c.uploadedAfter.getTime()))) return false;
  return true;
}

function resolveRange(range: R2GetOptions["range"], size: number): { offset: number; length: number } {
  if (!range || range instanceof Headers) return { offset: 0, length: size };
  if ("suffix" in range) {
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  const offset = Math.min(range.offset ?? 0, size);
  const length = Math.min(range.length ?? size - offset, size - offset);
  return { offset, length };
}

async function toBytes(value: ReadableStream | ArrayBuffer | ArrayBufferView | string | null): Promise<Uint8Array> {
  if (value === null) return new Uint8Array(0);
  if (typeof value === "string") return new TextEncoder().encode(value);
  if (value instanceof ReadableStream) return new Uint8Array(await new Response(value).arrayBuffer());
  if (ArrayBuffer.isView(value))
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  return new Uint8Array(value.slice(0));
}

function describe(e: Entry): R2Object {
  return {
    key: e.key,
    version: e.version,
    size: e.bytes.byteLength,
    etag: e.etag,
    httpEtag: `"${e.etag}"`,
    checksums: { toJSON: () => ({}) },
    uploaded: new Date(e.uploaded),
    httpMetadata: { ...e.httpMetadata },
    customMetadata: { ...e.customMetadata },
    storageClass: "Standard",
    writeHttpMetadata: (headers: Headers) => {
      if (e.httpMetadata.contentType) headers.set("content-type", e.httpMetadata.contentType);
    },
  } as R2Object;
}

function withBody(e: Entry, bytes: Uint8Array, range: { offset: number; length: number }): R2ObjectBody {
  const copy = bytes.slice();
  let used = false;
  const take = () => {
    used = true;
    return copy;
  };
  return {
    ...describe(e),
    range,
    get body() {
      const b = take();
      return new ReadableStream<Uint8Array>({
        start(ctl) {
          if (b.byteLength > 0) ctl.enqueue(b);
          ctl.close();
        },
      });
    },
    get bodyUsed() {
      return used;
    },
    arrayBuffer: async () => take().buffer as ArrayBuffer,
    bytes: async () => take(),
    text: async () => new TextDecoder().decode(take()),
    json: async <T>() => JSON.parse(new TextDecoder().decode(take())) as T,
    blob: async () => new Blob([take()]),
  } as unknown as R2ObjectBody;
}
