/** The per-registry index of which repositories hold which blobs (the hint behind cross-repository mounts). */
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobLocations } from "../../builder-cli/src/registry/blob-locations.ts";

const A = `sha256:${"a".repeat(64)}`;
const B = `sha256:${"b".repeat(64)}`;

describe("BlobLocations", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "2dfs-locations-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps one file per registry, newest repository first, at most five", async () => {
    const l = await BlobLocations.open(dir, "127.0.0.1:5000");
    for (const r of ["m/1", "m/2", "m/3", "m/4", "m/5", "m/6", "m/2"]) l.record(A, r);
    expect(l.repositoriesOf(A)).toEqual(["m/2", "m/6", "m/5", "m/4", "m/3"]);
    await l.save();
    expect(await readdir(dir)).toEqual(["127.0.0.1_5000.json"]);
    expect((await BlobLocations.open(dir, "127.0.0.1:5000")).repositoriesOf(A)).toEqual(l.repositoriesOf(A));
    expect((await BlobLocations.open(dir, "registry.example.com")).repositoriesOf(A)).toEqual([]);
  });

  it("merges with what another push saved meanwhile", async () => {
    const first = await BlobLocations.open(dir, "r.example");
    const second = await BlobLocations.open(dir, "r.example");
    first.record(A, "m/one");
    second.record(B, "m/two");
    second.record(A, "m/two");
    await first.save();
    await second.save();
    const merged = await BlobLocations.open(dir, "r.example");
    expect(merged.repositoriesOf(A)).toEqual(["m/two", "m/one"]);
    expect(merged.repositoriesOf(B)).toEqual(["m/two"]);
  });

  it("forgets a repository that turned out to lack the blob", async () => {
    const l = await BlobLocations.open(dir, "r.example");
    l.record(A, "m/old");
    l.record(A, "m/new");
    l.forget(A, "m/old");
    await l.save();
    expect((await BlobLocations.open(dir, "r.example")).repositoriesOf(A)).toEqual(["m/new"]);
    l.forget(A, "m/new");
    await l.save();
    expect((await BlobLocations.open(dir, "r.example")).repositoriesOf(A)).toEqual([]);
  });

  it("starts afresh from a damaged file", async () => {
    await writeFile(join(dir, "r.example.json"), "{not json");
    const l = await BlobLocations.open(dir, "r.example");
    expect(l.repositoriesOf(A)).toEqual([]);
    l.record(A, "m/x");
    await l.save();
    expect((await BlobLocations.open(dir, "r.example")).repositoriesOf(A)).toEqual(["m/x"]);
  });
});
