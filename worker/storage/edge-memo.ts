/**
 * What a location remembers of the bucket, so that a warm pull and an update poll are answered
 * without a round trip to the bucket's region (docs/edge.md): a manifest by digest, a partition's
 * answer for (image digest, label), a blob's link in a repository, and, for TAG_TTL_SECONDS, a
 * tag's digest. All but the tag are fixed by what names them; only a delete (or a collection)
 * makes them stale, and the location that deletes purges them at once. Elsewhere they live at most
 * EDGE_TTL_SECONDS, which the collector's grace period is never shorter than (config.ts).
 *
 * The Workers Cache API is per location and needs no binding; with a TTL of 0 nothing is kept.
 */

export class EdgeMemo {
  private readonly origin: string;
  private readonly ttlSeconds: number;
  private readonly later: (work: Promise<unknown>) => void;

  constructor(origin: string, ttlSeconds: number, later: (work: Promise<unknown>) => void) {
    this.origin = origin;
    this.ttlSeconds = ttlSeconds;
    this.later = later;
  }

  get enabled(): boolean {
    return this.ttlSeconds > 0;
  }

  /** The bytes and headers kept under `path`, if this location has them. */
  async match(path: string): Promise<Response | undefined> {
    if (!this.enabled) return undefined;
    return caches.default.match(this.request(path)).catch(() => undefined);
  }

  async json<T>(path: string): Promise<T | undefined> {
    const hit = await this.match(path);
    return hit ? ((await hit.json()) as T) : undefined;
  }

  /** Keeps `body` under `path` for `ttlSeconds` (EDGE_TTL_SECONDS by default), after the response. */
  keep(path: string, body: BodyInit, headers: Record<string, string> = {}, ttlSeconds = this.ttlSeconds): void {
    if (!this.enabled || ttlSeconds <= 0) return;
    const response = new Response(body, { headers: { ...headers, "Cache-Control": `max-age=${ttlSeconds}` } });
    this.later(caches.default.put(this.request(path), response).catch(() => undefined));
  }

  keepJson(path: string, value: unknown, ttlSeconds?: number): void {
    this.keep(path, JSON.stringify(value), { "Content-Type": "application/json" }, ttlSeconds);
  }

  /** Forgets `paths` at this location, before the response: the writer sees its own write. */
  async purge(...paths: string[]): Promise<void> {
    if (!this.enabled) return;
    await Promise.all(paths.map((p) => caches.default.delete(this.request(p)).catch(() => false)));
  }

  private request(path: string): Request {
    return new Request(new URL(path, this.origin).toString(), { method: "GET" });
  }
}
