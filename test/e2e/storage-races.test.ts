/**
 * Concurrent clients racing on the same upload or the same bytes, against the registry as users
 * run it (`wrangler dev`, local R2), with blobs over one 10 MiB part: the four races of
 * docs/storage.md, "Races that were seen". Each race is run for several rounds, and every round
 * is judged: a round that breaks an invariant is reported with the statuses it saw, and the test
 * fails at the end with all of them.
 *
 *   1. PUT closing a streamed upload vs DELETE of the same session: a 201 means the blob reads
 *      back intact, and the same bytes pushed later by another repository pull intact.
 *   2. The same bytes stored by two repositories at once (monolithic POST vs closing PUT), both
 *      tagged: after a collection with no grace period, both images still pull intact.
 *   3. Two PUTs closing one Content-Range session: 201 or 404 BLOB_UPLOAD_UNKNOWN, never 500;
 *      one of them wins, and the blob reads back intact.
 *   4. Two PATCHes of the same range with different bodies: one 202, one 416 RANGE_INVALID, and
 *      the stored blob is the winner's bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openUpload } from "../helpers/oci.ts";
import { sleep } from "../helpers/process.ts";
import {
  cancelUpload,
  closeUpload,
  collectGarbage,
  errorCode,
  MiB,
  patchRange,
  patchStreamed,
  postWhole,
  pullImage,
  pushImage,
  randomBlob,
  readBlob,
  readProblem,
  said,
  type BlobBytes,
  type Step,
} from "../helpers/registry-http.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

/** Over one 10 MiB part, so a streamed PATCH goes to its own data object and Content-Range PATCHes to multipart. */
const BLOB_BYTES = 11 * MiB;

/** Rounds per race: enough that the interleaving that breaks the code as first written shows up. */
const ROUNDS = { closeVsCancel: 16, sameBytes: 8, closeVsClose: 16, patchVsPatch: 24 } as const;

/** How long the closing PUT waits after the monolithic POST starts (item 2): overlaps of every size. */
const SAME_BYTES_DELAYS_MS = [0, 20, 50, 100, 150, 250];

/** The step answered `status`, or a 404 BLOB_UPLOAD_UNKNOWN (the other request won). */
function wonOrUnknown(what: string, s: Step, status: number): string | undefined {
  if (s.status === status) return undefined;
  if (s.status === 404 && errorCode(s) === "BLOB_UPLOAD_UNKNOWN") return undefined;
  return `${said(what, s)} (want ${status} or 404 BLOB_UPLOAD_UNKNOWN)`;
}

function present(xs: readonly (string | undefined)[]): string[] {
  return xs.filter((x): x is string => x !== undefined);
}

/** What one round of a race saw (the statuses), and every invariant it found broken. */
interface Round {
  seen: string;
  problems: string[];
}

/**
 * Runs `race` for `count` rounds, logs what each saw (the reproduction, for the record), then
 * fails once with every broken round, so one run shows how often and how the race goes wrong.
 */
async function inRounds(name: string, count: number, race: (round: number) => Promise<Round>): Promise<void> {
  const failures: string[] = [];
  const seen: string[] = [];
  for (let round = 0; round < count; round++) {
    const r = await race(round);
    seen.push(r.seen);
    if (r.problems.length > 0) failures.push(`round ${round} (${r.seen}): ${r.problems.join("; ")}`);
  }
  console.log(`${name}: ${seen.join(", ")}`);
  expect(failures).toEqual([]);
}

describe("storage races over HTTP (wrangler dev)", () => {
  let registry: Registry;
  let base: string;

  beforeAll(async () => {
    registry = await startRegistry({ vars: { AUTH_MODE: "none", GC_GRACE_SECONDS: "0", EDGE_TTL_SECONDS: "0" } });
    base = registry.url;
  });

  afterAll(async () => {
    await registry?.stop();
  });

  /** Why `repo`'s copy of `blob` is not its bytes, or undefined when it is. */
  const intact = async (repo: string, blob: BlobBytes): Promise<string | undefined> =>
    readProblem(await readBlob(base, repo, blob.digest), { digest: blob.digest, size: blob.bytes.byteLength });

  it("PUT closing a streamed upload races DELETE of the session: a 201 blob stays readable, later pushes pull intact", async () => {
    await inRounds("close vs cancel", ROUNDS.closeVsCancel, async (round) => {
      const repo = `race/close-cancel-${round}`;
      const blob = randomBlob(BLOB_BYTES);
      const patched = await patchStreamed(await openUpload(base, repo), blob.bytes);
      expect(patched.status, said("PATCH", patched)).toBe(202);
      const [put, del] = await Promise.all([
        closeUpload(patched.location!, blob.digest),
        cancelUpload(patched.location!),
      ]);
      const problems = present([wonOrUnknown("PUT", put, 201), wonOrUnknown("DELETE", del, 204)]);
      if (put.status === 201) {
        const problem = await intact(repo, blob);
        if (problem) problems.push(`after PUT 201: ${problem}`);
      }
      // Whatever won, the same bytes pushed by someone else must be stored for real.
      const other = `race/close-cancel-${round}-later`;
      const later = await postWhole(base, other, blob);
      if (later.status !== 201) problems.push(`later push to ${other}: ${said("POST", later)}`);
      else {
        const problem = await intact(other, blob);
        if (problem) problems.push(`later push to ${other} answered 201, then ${problem}`);
      }
      return { seen: `PUT ${put.status} / DELETE ${del.status}`, problems };
    });
  });

  it("the same bytes stored by two repositories at once both still pull after a collection with no grace", async () => {
    const failures: string[] = [];
    const images: { repo: string; round: number }[] = [];
    for (let round = 0; round < ROUNDS.sameBytes; round++) {
      const blob = randomBlob(BLOB_BYTES);
      const [repoA, repoB] = [`race/same-bytes-${round}-a`, `race/same-bytes-${round}-b`];
      const patched = await patchStreamed(await openUpload(base, repoB), blob.bytes);
      expect(patched.status, said("PATCH", patched)).toBe(202);
      const delay = SAME_BYTES_DELAYS_MS[round % SAME_BYTES_DELAYS_MS.length]!;
      const [post, put] = await Promise.all([
        postWhole(base, repoA, blob),
        sleep(delay).then(() => closeUpload(patched.location!, blob.digest)),
      ]);
      if (post.status !== 201 || put.status !== 201) {
        failures.push(`round ${round}: ${said("POST", post)}, ${said("PUT", put)} (want 201 for both)`);
        continue;
      }
      const layer = { digest: blob.digest, size: BLOB_BYTES };
      for (const repo of [repoA, repoB]) {
        const pushed = await pushImage(base, repo, "v1", [layer]);
        if (pushed.status !== 201) failures.push(`round ${round}: ${said(`PUT manifest ${repo}:v1`, pushed)}`);
        else images.push({ repo, round });
      }
    }
    await collectGarbage(base);
    for (const { repo, round } of images) {
      const pulled = await pullImage(base, repo, "v1");
      if (pulled.problems.length > 0) failures.push(`round ${round}, after collection: ${pulled.problems.join("; ")}`);
    }
    expect(failures).toEqual([]);
    expect(images.length).toBe(2 * ROUNDS.sameBytes);
  });

  it("two PUTs closing one Content-Range session: 201 or 404 BLOB_UPLOAD_UNKNOWN, one wins, the blob is intact", async () => {
    await inRounds("close vs close", ROUNDS.closeVsClose, async (round) => {
      const repo = `race/close-close-${round}`;
      const blob = randomBlob(BLOB_BYTES);
      const patched = await patchRange(await openUpload(base, repo), 0, blob.bytes);
      expect(patched.status, said("PATCH", patched)).toBe(202);
      const puts = await Promise.all([
        closeUpload(patched.location!, blob.digest),
        closeUpload(patched.location!, blob.digest),
      ]);
      const problems = present(puts.map((p, i) => wonOrUnknown(`PUT #${i + 1}`, p, 201)));
      // Both clients asked for the same thing; a correct registry completes it once.
      if (!puts.some((p) => p.status === 201)) problems.push("neither PUT answered 201");
      const problem = await intact(repo, blob);
      if (problem) problems.push(problem);
      return { seen: puts.map((p) => p.status).join("/"), problems };
    });
  });

  it("two PATCHes of the same range on one session: one 202, one 416 RANGE_INVALID, the winner's bytes are stored", async () => {
    await inRounds("patch vs patch", ROUNDS.patchVsPatch, async (round) => {
      const repo = `race/patch-patch-${round}`;
      const location = await openUpload(base, repo);
      const bodies = [randomBlob(3000), randomBlob(3000)];
      const patches = await Promise.all(bodies.map((b) => patchRange(location, 0, b.bytes)));
      const seen = patches.map((p) => p.status).join("/");
      const winners = patches.flatMap((p, i) => (p.status === 202 ? [i] : []));
      const losers = patches.filter((p) => p.status === 416 && errorCode(p) === "RANGE_INVALID");
      if (winners.length !== 1 || losers.length !== 1) {
        const problems = [
          `${patches.map((p, i) => said(`PATCH #${i + 1}`, p)).join(", ")} (want one 202 and one 416 RANGE_INVALID)`,
        ];
        // Which body was kept, when both were taken: closing with the first one's digest tells.
        if (winners.length === 2)
          problems.push(said("then PUT with #1's digest", await closeUpload(location, bodies[0]!.digest)));
        return { seen, problems };
      }
      const winner = bodies[winners[0]!]!;
      const put = await closeUpload(patches[winners[0]!]!.location ?? location, winner.digest);
      if (put.status !== 201) return { seen, problems: [`closing with the winner's digest: ${said("PUT", put)}`] };
      return { seen, problems: present([await intact(repo, winner)]) };
    });
  });
});
