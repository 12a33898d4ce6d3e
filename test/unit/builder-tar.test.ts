import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import tar from "tar-stream";
import { afterEach, describe, expect, it } from "vitest";
import { sandbox, type BuildOutput, type Sandbox } from "./builder-helpers.ts";

const boxes: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(boxes.splice(0).map((b) => b.cleanup()));
});

interface ReadEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  linkname: string | null;
  body: string;
}

async function readTar(bytes: Buffer): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on("entry", (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: unknown) => chunks.push(c as Buffer));
      stream.on("end", () => {
        out.push({
          name: h.name,
          type: h.type ?? "file",
          mode: h.mode ?? -1,
          uid: h.uid ?? -1,
          gid: h.gid ?? -1,
          uname: h.uname ?? "",
          gname: h.gname ?? "",
          mtime: h.mtime?.getTime() ?? -1,
          linkname: h.linkname ?? null,
          body: Buffer.concat(chunks).toString("utf8"),
        });
        next();
      });
    });
    extract.on("finish", resolve);
    extract.on("error", reject);
  });
  extract.end(bytes);
  await done;
  return out;
}

async function blobOf(
  out: BuildOutput,
  row: number,
  col: number,
): Promise<{ bytes: Buffer; a: BuildOutput["allotments"][number] }> {
  const a = out.allotments.find((x) => x.row === row && x.col === col)!;
  return { a, bytes: await readFile(path.join(out.layout, "blobs/sha256", a.digest.slice(7))) };
}

describe("allotment tars", () => {
  it("are deterministic: sorted, parents present, owner 0 with empty names, mtime 0, permission bits only", async () => {
    const s = await sandbox();
    boxes.push(s);
    const ctx = path.join(s.dir, "ctx");
    await mkdir(path.join(ctx, "w/b/deep"), { recursive: true });
    await mkdir(path.join(ctx, "w/a"), { recursive: true });
    await writeFile(path.join(ctx, "w/b/deep/z.txt"), "zed\n");
    await writeFile(path.join(ctx, "w/a/run.sh"), "#!/bin/sh\n");
    await writeFile(path.join(ctx, "w/b/x.txt"), "ex\n");
    await writeFile(path.join(ctx, "solo.txt"), "solo\n");
    await symlink("../a/run.sh", path.join(ctx, "w/b/link"));
    await chmod(path.join(ctx, "w/a/run.sh"), 0o4755);
    await chmod(path.join(ctx, "w/b/x.txt"), 0o640);
    await chmod(path.join(ctx, "w/b"), 0o750);
    // Host ownership must not leak into the tar.
    await chown(path.join(ctx, "w/b/x.txt"), 1234, 4321);
    await writeFile(
      path.join(ctx, "2dfs.json"),
      JSON.stringify({
        allotments: [{ src: ["w", "solo.txt"], dst: ["/opt/app/", "/opt/etc/solo.txt"], row: 0, col: 0 }],
      }),
    );
    const out = s.json<BuildOutput>(["build", "--compression", "gzip", "scratch", "tars:v1"], ctx);
    const { bytes, a } = await blobOf(out, 0, 0);
    expect(a.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    // gzip header: no mtime, no name, OS byte fixed to Unix.
    expect([...bytes.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    const entries = await readTar(gunzipSync(bytes));

    expect(entries.map((e) => [e.name.replace(/\/$/, ""), e.type, e.mode.toString(8)])).toEqual([
      ["opt", "directory", "755"],
      ["opt/app", "directory", "755"],
      ["opt/app/a", "directory", "755"],
      ["opt/app/a/run.sh", "file", "755"],
      ["opt/app/b", "directory", "750"],
      ["opt/app/b/deep", "directory", "755"],
      ["opt/app/b/deep/z.txt", "file", "644"],
      ["opt/app/b/link", "symlink", "777"],
      ["opt/app/b/x.txt", "file", "640"],
      ["opt/etc", "directory", "755"],
      ["opt/etc/solo.txt", "file", "644"],
    ]);
    for (const e of entries) expect([e.uid, e.gid, e.uname, e.gname, e.mtime]).toEqual([0, 0, "", "", 0]);
    expect(entries.find((e) => e.type === "symlink")!.linkname).toBe("../a/run.sh");
    expect(entries.find((e) => e.name === "opt/app/b/deep/z.txt")!.body).toBe("zed\n");
  });

  it("auto stores random data as a plain tar and gzips text", async () => {
    const s = await sandbox();
    boxes.push(s);
    const ctx = path.join(s.dir, "ctx");
    await mkdir(ctx, { recursive: true });
    await writeFile(path.join(ctx, "weights.bin"), randomBytes(3 * 1024 * 1024));
    await writeFile(path.join(ctx, "notes.txt"), "the quick brown fox jumps over the lazy dog\n".repeat(40_000));
    await writeFile(
      path.join(ctx, "2dfs.json"),
      JSON.stringify({
        allotments: [
          { src: "weights.bin", dst: "/w.bin", row: 0, col: 0 },
          { src: "notes.txt", dst: "/notes.txt", row: 0, col: 1 },
        ],
      }),
    );
    const out = s.json<BuildOutput>(["build", "scratch", "auto:v1"], ctx);
    const random = await blobOf(out, 0, 0);
    expect(random.a.mediaType).toBe("application/vnd.oci.image.layer.v1.tar");
    expect(random.a.digest).toBe(random.a.diffid);
    expect((await readTar(random.bytes))[0]!.name).toBe("w.bin");
    const text = await blobOf(out, 0, 1);
    expect(text.a.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    expect(text.a.digest).not.toBe(text.a.diffid);
    expect(text.a.size).toBeLessThan(1_760_000 / 20);

    // zstd on request, its digest and diffid from the same pass.
    const zstd = s.json<BuildOutput>(["build", "--compression", "zstd", "--level", "19", "scratch", "auto:zstd"], ctx);
    const z = await blobOf(zstd, 0, 1);
    expect(z.a.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
    expect([...z.bytes.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
    expect(z.a.diffid).toBe(text.a.diffid);
  });
});
