/**
 * Field facts: what partitioning needs to know about a 2DFS field, recorded per repository when a
 * manifest with that field is pushed (worker/partitions/facts.ts decides what goes in). The record
 * is derived from immutable content (the field and the allotments' sizes), so a rewrite by a
 * racing push writes the same facts, and the collector drops it with the field's last link.
 */
import type { Digest } from "../../core/oci/digest.ts";
import type { Bucket } from "./bucket.ts";
import { keys } from "./keys.ts";

export class FieldFactsStore {
  private readonly bucket: Bucket;
  constructor(bucket: Bucket) {
    this.bucket = bucket;
  }

  async get<T>(repo: string, field: Digest): Promise<T | null> {
    const obj = await this.bucket.get(keys.fieldFacts(repo, field));
    return obj ? ((await obj.json()) as T) : null;
  }

  async put(repo: string, field: Digest, facts: unknown): Promise<void> {
    await this.bucket.put(keys.fieldFacts(repo, field), JSON.stringify(facts), {
      httpMetadata: { contentType: "application/json" },
    });
  }
}
