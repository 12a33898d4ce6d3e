/**
 * KV in front of partition computation. KV is eventually consistent, so it holds only immutable,
 * content-addressed answers: a partition is fixed by (repository, stored image digest, canonical
 * selection), and a stale or missing entry only costs a recomputation. Without a namespace (the
 * in-memory harness) nothing is cached.
 */
import { sha256 } from "../../core/oci/digest.ts";
import { kvKeys } from "./keys.ts";

export class PartitionCache {
  private readonly kv: KVNamespace | undefined;
  constructor(kv: KVNamespace | undefined) {
    this.kv = kv;
  }

  /** The KV key for one question about one image: hashed, so that any selection fits KV's 512-byte keys. */
  async key(repo: string, imageDigest: string, question: string): Promise<string> {
    return kvKeys.partition((await sha256(`${repo}\n${imageDigest}\n${question}`)).slice(7));
  }

  async get<T>(key: string): Promise<T | null> {
    // KV is only a cache: one that fails is a miss, and the answer is computed instead.
    return this.kv ? this.kv.get<T>(key, "json").catch(() => null) : null;
  }

  /** KV allows one write a second per key; a lost race wrote the same immutable value anyway. */
  async put(key: string, value: unknown): Promise<void> {
    await this.kv?.put(key, JSON.stringify(value)).catch(() => undefined);
  }
}
