/**
 * The registry client's pure parts: image references, credential lookup, auth challenges, upload
 * bookkeeping and progress lines. The network parts run against a real registry in
 * registry-client-push.test.ts.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseChallenge } from "../../builder-cli/src/registry/auth.ts";
import { CredentialsError, resolveCredentials } from "../../builder-cli/src/registry/credentials.ts";
import { formatBytes } from "../../core/format.ts";
import { createProgressReporter, formatReport } from "../../builder-cli/src/registry/progress.ts";
import { formatImageRef, ImageRefError, parseImageRef } from "../../builder-cli/src/registry/ref.ts";
import { ChunkReader } from "../../builder-cli/src/registry/streams.ts";
import { committedOffset, withDigest } from "../../builder-cli/src/registry/upload.ts";
import { defaultUploadStateDir, UploadStateStore } from "../../builder-cli/src/registry/upload-state.ts";

const D = `sha256:${"ab".repeat(32)}`;

describe("parseImageRef", () => {
  it.each([
    ["ubuntu", { registry: "registry-1.docker.io", repository: "library/ubuntu", plainHttp: false }],
    [
      "ubuntu:22.04",
      { registry: "registry-1.docker.io", repository: "library/ubuntu", tag: "22.04", plainHttp: false },
    ],
    [
      "docker.io/library/ubuntu:latest",
      { registry: "registry-1.docker.io", repository: "library/ubuntu", tag: "latest", plainHttp: false },
    ],
    ["index.docker.io/busybox", { registry: "registry-1.docker.io", repository: "library/busybox", plainHttp: false }],
    ["myuser/app:1", { registry: "registry-1.docker.io", repository: "myuser/app", tag: "1", plainHttp: false }],
    ["localhost:5000/foo/bar:v1", { registry: "localhost:5000", repository: "foo/bar", tag: "v1", plainHttp: true }],
    ["localhost/x", { registry: "localhost", repository: "x", plainHttp: true }],
    [
      "127.0.0.1:8787/models/llama:q4",
      { registry: "127.0.0.1:8787", repository: "models/llama", tag: "q4", plainHttp: true },
    ],
    ["[::1]:5000/x:y", { registry: "[::1]:5000", repository: "x", tag: "y", plainHttp: true }],
    ["example.com/a/b/c", { registry: "example.com", repository: "a/b/c", plainHttp: false }],
    ["ghcr.io/org/app@" + D, { registry: "ghcr.io", repository: "org/app", digest: D, plainHttp: false }],
    [
      "ghcr.io/org/app:1.0@" + D,
      { registry: "ghcr.io", repository: "org/app", tag: "1.0", digest: D, plainHttp: false },
    ],
    [
      "reg.example:8443/a:sm--0.0.1.1",
      { registry: "reg.example:8443", repository: "a", tag: "sm--0.0.1.1", plainHttp: false },
    ],
  ])("%s", (s, want) => {
    expect(parseImageRef(s)).toEqual(want);
  });

  it("forces plain http when asked", () => {
    expect(parseImageRef("edge.internal:8080/m", { plainHttp: true })).toMatchObject({ plainHttp: true });
  });

  it.each(["Ubuntu", "repo:bad tag", "repo:", "repo@sha256:abc", "repo@md5:" + "0".repeat(32), "a//b", "-x/y"])(
    "refuses %s",
    (s) => {
      expect(() => parseImageRef(s)).toThrow(ImageRefError);
    },
  );

  it("formats Docker Hub references the way users write them", () => {
    expect(formatImageRef(parseImageRef("ubuntu:22.04"))).toBe("docker.io/library/ubuntu:22.04");
    expect(formatImageRef(parseImageRef("localhost:5000/a@" + D))).toBe(`localhost:5000/a@${D}`);
  });
});

describe("resolveCredentials", () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "2dfs-creds-"));
    await mkdir(join(home, ".docker"));
    const b64 = (s: string): string => Buffer.from(s).toString("base64");
    await writeFile(
      join(home, ".docker", "config.json"),
      JSON.stringify({
        auths: {
          "127.0.0.1:5000": { auth: b64("alice:pa:ss") },
          "https://index.docker.io/v1/": { auth: b64("hubuser:hubpass") },
          "https://ghcr.io": { username: "gh", password: "ghpass" },
          "quay.io": {},
        },
        credsStore: "desktop",
        credHelpers: { "quay.io": "ecr-login" },
      }),
    );
  });
  afterAll(() => rm(home, { recursive: true, force: true }));

  it("prefers the flags, then the environment", async () => {
    const env = { HOME: home, TDFS_USERNAME: "envuser", TDFS_PASSWORD: "envpass" };
    expect(await resolveCredentials({ registry: "127.0.0.1:5000", username: "u", password: "p", env })).toEqual({
      username: "u",
      password: "p",
      source: "flags",
    });
    expect(await resolveCredentials({ registry: "127.0.0.1:5000", env })).toEqual({
      username: "envuser",
      password: "envpass",
      source: "env",
    });
    // --username with the password from TDFS_PASSWORD (a CI secret).
    expect(await resolveCredentials({ registry: "x.io", username: "u", env: { TDFS_PASSWORD: "s" } })).toMatchObject({
      username: "u",
      password: "s",
    });
  });

  it("reads docker's config.json under HOME", async () => {
    const env = { HOME: home };
    expect(await resolveCredentials({ registry: "127.0.0.1:5000", env })).toEqual({
      username: "alice",
      password: "pa:ss",
      source: "docker-config",
    });
    expect(await resolveCredentials({ registry: "registry-1.docker.io", env })).toMatchObject({ username: "hubuser" });
    expect(await resolveCredentials({ registry: "ghcr.io", env })).toMatchObject({
      username: "gh",
      password: "ghpass",
    });
  });

  it("goes anonymous when nothing names the host, or the credsStore helper is not installed", async () => {
    // credsStore "desktop" applies to every host; its helper is not on this machine.
    const env = { HOME: home, PATH: "/nonexistent" };
    expect(await resolveCredentials({ registry: "other.example", env })).toBeUndefined();
    expect(
      await resolveCredentials({ registry: "127.0.0.1:5000", env: { HOME: join(home, "nowhere") } }),
    ).toBeUndefined();
  });

  it("refuses a credential helper named for the host that is not installed", async () => {
    await expect(
      resolveCredentials({ registry: "quay.io", env: { HOME: home, PATH: "/nonexistent" } }),
    ).rejects.toThrow(
      /names the credential helper "ecr-login" for quay\.io, but docker-credential-ecr-login is not on PATH/,
    );
  });

  describe("credential helpers and the containers auth file", () => {
    let dir: string;
    let bin: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "2dfs-helpers-"));
      bin = join(dir, "bin");
      await mkdir(bin);
      // A helper as docker runs it: `get`, the server on stdin, JSON on stdout, exit 1 when unknown.
      const helper = (known: Record<string, [string, string]>): string =>
        [
          "#!/bin/sh",
          '[ "$1" = get ] || exit 2',
          "read -r server",
          'case "$server" in',
          ...Object.entries(known).map(
            ([server, [user, secret]]) =>
              `  '${server}') printf '%s' '{"ServerURL":"${server}","Username":"${user}","Secret":"${secret}"}' ;;`,
          ),
          "  *) echo 'credentials not found in native keychain'; exit 1 ;;",
          "esac",
          "",
        ].join("\n");
      await writeFile(join(bin, "docker-credential-teststore"), helper({ "store.example:5000": ["sam", "s3"] }), {
        mode: 0o755,
      });
      await writeFile(
        join(bin, "docker-credential-testhelper"),
        helper({ "helped.example": ["hal", "h3"], "https://index.docker.io/v1/": ["hubhelper", "hub3"] }),
        { mode: 0o755 },
      );
      await writeFile(
        join(bin, "docker-credential-tokens"),
        helper({ "token.example": ["<token>", "an-identity-token"] }),
        { mode: 0o755 },
      );
      await mkdir(join(dir, "docker"));
      await writeFile(
        join(dir, "docker", "config.json"),
        JSON.stringify({
          auths: { "inline.example": { auth: Buffer.from("ina:line").toString("base64") } },
          credsStore: "teststore",
          credHelpers: { "helped.example": "testhelper", "docker.io": "testhelper", "token.example": "tokens" },
        }),
      );
      await mkdir(join(dir, "run", "containers"), { recursive: true });
      await writeFile(
        join(dir, "run", "containers", "auth.json"),
        JSON.stringify({ auths: { "podman.example:8443": { auth: Buffer.from("pod:man").toString("base64") } } }),
      );
      await writeFile(
        join(dir, "explicit.json"),
        JSON.stringify({ auths: { "podman.example:8443": { auth: Buffer.from("ex:plicit").toString("base64") } } }),
      );
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    const env = (): Record<string, string> => ({
      HOME: join(dir, "home"),
      DOCKER_CONFIG: join(dir, "docker"),
      PATH: `${bin}:/usr/bin:/bin`,
      XDG_RUNTIME_DIR: join(dir, "run"),
    });

    it("runs the helper credHelpers names for the host, Docker Hub by its v1 URL", async () => {
      expect(await resolveCredentials({ registry: "helped.example", env: env() })).toEqual({
        username: "hal",
        password: "h3",
        source: "credential-helper",
      });
      expect(await resolveCredentials({ registry: "registry-1.docker.io", env: env() })).toMatchObject({
        username: "hubhelper",
      });
    });

    it("prefers an inline auths entry, then asks the credsStore helper", async () => {
      expect(await resolveCredentials({ registry: "inline.example", env: env() })).toMatchObject({
        username: "ina",
        source: "docker-config",
      });
      expect(await resolveCredentials({ registry: "store.example:5000", env: env() })).toEqual({
        username: "sam",
        password: "s3",
        source: "credential-helper",
      });
    });

    it("passes over identity tokens, and hosts no helper knows reach the containers auth file", async () => {
      expect(await resolveCredentials({ registry: "token.example", env: env() })).toBeUndefined();
      expect(await resolveCredentials({ registry: "podman.example:8443", env: env() })).toEqual({
        username: "pod",
        password: "man",
        source: "containers-auth",
      });
      expect(await resolveCredentials({ registry: "nobody.example", env: env() })).toBeUndefined();
    });

    it("reads $REGISTRY_AUTH_FILE before $XDG_RUNTIME_DIR/containers/auth.json", async () => {
      const e = { ...env(), REGISTRY_AUTH_FILE: join(dir, "explicit.json") };
      expect(await resolveCredentials({ registry: "podman.example:8443", env: e })).toMatchObject({ username: "ex" });
    });
  });

  it("honours DOCKER_CONFIG", async () => {
    const env = { HOME: "/nonexistent", DOCKER_CONFIG: join(home, ".docker") };
    expect(await resolveCredentials({ registry: "127.0.0.1:5000", env })).toMatchObject({ username: "alice" });
  });

  it("refuses half a credential", async () => {
    await expect(resolveCredentials({ registry: "x.io", username: "u", env: {} })).rejects.toThrow(CredentialsError);
    await expect(resolveCredentials({ registry: "x.io", env: { TDFS_PASSWORD: "p" } })).rejects.toThrow(
      /without a username/,
    );
  });
});

describe("parseChallenge", () => {
  it("reads a Bearer challenge with a quoted scope holding commas", () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
      ),
    ).toEqual({
      scheme: "bearer",
      realm: "https://auth.docker.io/token",
      service: "registry.docker.io",
      scope: "repository:samalba/my-app:pull,push",
    });
  });

  it("reads Basic, and insufficient_scope errors", () => {
    expect(parseChallenge('Basic realm="2dfs-test"')).toEqual({ scheme: "basic", realm: "2dfs-test" });
    expect(parseChallenge('bearer realm="http://a/t", error="insufficient_scope"')).toMatchObject({
      realm: "http://a/t",
      error: "insufficient_scope",
    });
  });

  it("ignores what it cannot use", () => {
    expect(parseChallenge(null)).toBeUndefined();
    expect(parseChallenge("Negotiate abc")).toBeUndefined();
    expect(parseChallenge('Bearer service="x"')).toBeUndefined();
  });
});

describe("upload bookkeeping", () => {
  it("appends the digest to a Location, keeping its query", () => {
    expect(withDigest("http://r/v2/a/blobs/uploads/u1?_state=x%3D%3D", D)).toBe(
      `http://r/v2/a/blobs/uploads/u1?_state=x%3D%3D&digest=sha256%3A${"ab".repeat(32)}`,
    );
    expect(withDigest("/v2/a/blobs/uploads/u1", D)).toBe(`/v2/a/blobs/uploads/u1?digest=sha256%3A${"ab".repeat(32)}`);
  });

  it("reads the committed length from Range", () => {
    expect(committedOffset("0-10485759")).toBe(10_485_760);
    expect(committedOffset("bytes=0-99")).toBe(100);
    expect(committedOffset("0-0")).toBe(0);
    expect(committedOffset(null)).toBe(0);
  });

  it("keeps sessions under XDG_STATE_HOME and forgets them", async () => {
    expect(defaultUploadStateDir({ XDG_STATE_HOME: "/s", HOME: "/h" })).toBe("/s/2dfs-push/uploads");
    expect(defaultUploadStateDir({ HOME: "/h" })).toBe("/h/.local/state/2dfs-push/uploads");
    const dir = await mkdtemp(join(tmpdir(), "2dfs-state-"));
    try {
      const store = new UploadStateStore(dir);
      const s = {
        registry: "r:1",
        repository: "a/b",
        digest: D,
        location: "http://r:1/u?x=1",
        offset: 5,
        chunkSize: 5,
      };
      await store.save(s);
      expect(await store.load("r:1", "a/b", D)).toMatchObject(s);
      expect(await store.load("r:1", "a/c", D)).toBeUndefined();
      await store.delete("r:1", "a/b", D);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("cuts one stream into bodies of exact lengths and notices a short or long source", async () => {
    const source = (sizes: number[]): ReadableStream<Uint8Array> =>
      new ReadableStream({
        start(c) {
          let v = 0;
          for (const n of sizes) c.enqueue(Uint8Array.from({ length: n }, () => v++ & 0xff));
          c.close();
        },
      });
    const all = async (s: ReadableStream<Uint8Array>): Promise<number[]> => [
      ...new Uint8Array(await new Response(s).arrayBuffer()),
    ];
    const r = new ChunkReader(source([3, 7, 0, 5]), "test blob");
    let counted = 0;
    expect(await all(r.take(4, (n) => (counted += n)))).toEqual([0, 1, 2, 3]);
    await r.skip(2);
    expect(await all(r.take(6, (n) => (counted += n)))).toEqual([6, 7, 8, 9, 10, 11]);
    await expect(r.expectEnd()).rejects.toThrow(/longer than its declared size/);
    expect(counted).toBe(10);

    const short = new ChunkReader(source([3]), "short blob");
    await expect(all(short.take(5, () => {}))).rejects.toThrow(/ended 2 bytes early/);
  });
});

describe("progress lines", () => {
  it("prints one plain line per outcome off a TTY", () => {
    const out = new PassThrough();
    const lines: string[] = [];
    out.on("data", (b: Buffer) => lines.push(...b.toString().split("\n").filter(Boolean)));
    const p = createProgressReporter({ stream: out as unknown as NodeJS.WriteStream, tty: false });
    p.onEvent({ type: "blob-skipped", digest: D, size: 12_300_000 });
    p.onEvent({ type: "blob-start", digest: D, size: 31_457_280, mediaType: "x", offset: 10_485_760 });
    p.onEvent({ type: "blob-done", digest: D, size: 31_457_280, bytesSent: 20_971_520, seconds: 2 });
    p.onEvent({ type: "blob-mounted", digest: D, size: 1000, from: "base/img" });
    p.onEvent({ type: "blob-mounted", digest: D, size: 2000 });
    p.onEvent({ type: "manifest-pushed", digest: D, reference: "v1", mediaType: "x" });
    p.stop();
    expect(lines).toEqual([
      "skipped  sha256:abababababab… 12.3 MB (exists)",
      "pushing  sha256:abababababab… 31.5 MB, resuming at 10.5 MB",
      "uploaded sha256:abababababab… 31.5 MB in 2.0s (10.5 MB/s)",
      "mounted  sha256:abababababab… 1.0 kB from base/img",
      "mounted  sha256:abababababab… 2.0 kB (the registry had it)",
      "manifest sha256:abababababab… as v1",
    ]);
  });

  it("sums a push up", () => {
    expect(formatBytes(999)).toBe("999 B");
    expect(
      formatReport({
        blobsTotal: 5,
        blobsSkipped: 5,
        blobsMounted: 0,
        blobsUploaded: 0,
        bytesUploaded: 0,
        bytesMounted: 0,
        seconds: 0.25,
        digest: D,
      }),
    ).toBe(`pushed ${D}: 5 blobs, 0 uploaded (0 B), 5 already there in 0.3s`);
    expect(
      formatReport({
        blobsTotal: 5,
        blobsSkipped: 0,
        blobsMounted: 4,
        blobsUploaded: 1,
        bytesUploaded: 3_000,
        bytesMounted: 24_200_000,
        seconds: 1.25,
        digest: D,
      }),
    ).toBe(`pushed ${D}: 5 blobs, 1 uploaded (3.0 kB), 0 already there, 4 mounted (24.2 MB not sent) in 1.3s`);
  });
});
