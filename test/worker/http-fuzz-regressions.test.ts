/**
 * What the HTTP fuzzer (http-fuzz.test.ts) found, one named case each, checked with the same
 * answerProblems as the run, and with whatever else went wrong where the answer cannot show it.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { answerProblems, send, watchUnhandled, type FuzzRequest } from "./helpers/http-fuzz.ts";
import { MiB, randomBytes, streamOf } from "./helpers/bytes.ts";
import { call, expectOciError, registry, uniqueRepo } from "./helpers/registry.ts";

let unhandled: ReturnType<typeof watchUnhandled>;
beforeEach(() => void (unhandled = watchUnhandled()));
afterEach(() => unhandled.stop());

describe("HTTP fuzz regressions", () => {
  it("a body that ends before its Content-Length leaves no unhandled rejection behind (the blocks still in flight)", async () => {
    const repo = uniqueRepo("fuzzreg");
    const { location } = await registry.openUpload(repo);
    // What the fuzzer sent: a streamed body (no length of its own) under a Content-Length it
    // never reaches; a client that hangs up mid-chunk does the same. Several 1 MiB blocks are
    // read, so one is still being written when the copy gives up.
    const res = await call(location, {
      method: "PATCH",
      headers: { "Content-Length": String(8 * MiB) },
      body: streamOf(randomBytes(3 * MiB + 5)),
    });
    await expectOciError(res, 400, "SIZE_INVALID");
    expect(await unhandled.take()).toEqual([]);
  });

  it("a monolithic POST whose body ends early is refused the same way, with nothing left unhandled", async () => {
    const repo = uniqueRepo("fuzzreg");
    const req: FuzzRequest = {
      method: "POST",
      path: `/v2/${repo}/blobs/uploads/?digest=sha256:${"ab".repeat(32)}`,
      // More than one R2 put can take: the body goes through a session of its own (routes/uploads.ts storeWhole).
      headers: { "Content-Length": "99999999999" },
      body: { kind: "noise", size: 2 * MiB + 1, seed: 19 },
      chunked: true,
    };
    const res = await send(req, call);
    expect(res).not.toBe("unsendable");
    expect(await answerProblems(req, res as Response)).toEqual([]);
    expect(await unhandled.take()).toEqual([]);
  });
});
