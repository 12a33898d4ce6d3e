/**
 * The web view's HTTP behaviour inside workerd: security headers on every answer, addresses
 * (redirects, what names nothing), a shared selection rendered without any script, file lists as
 * JSON, and, with token auth, a hidden repository answered exactly like a missing one.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { usersWithPasswords, workerWith } from "./auth-support.ts";
import { anImage } from "../helpers/images/builder.ts";
import type { BuiltImage } from "../helpers/images/types.ts";
import { call as fetchRegistry, worker } from "./helpers/registry.ts";

const REPO = `ui/${crypto.randomUUID().slice(0, 8)}`;
let image: BuiltImage;

beforeAll(async () => {
  image = await anImage()
    .randomLayers(2, 4096)
    .allotment(0, 0)
    .allotment(0, 1, { opaque: true })
    .allotment(1, 1, { compression: "zstd" })
    .partition("first", "0.0.0.1")
    .pushTo(worker, REPO, "v1");
});

describe("the web view over HTTP", () => {
  it("sends a strict Content-Security-Policy and nosniff with pages, assets and refusals alike", async () => {
    const page = await fetchRegistry(`/ui/${REPO}:v1`);
    const html = await page.text();
    const script = /<script src="([^"]+)"/.exec(html)?.[1];
    const style = /<link rel="stylesheet" href="([^"]+)"/.exec(html)?.[1];
    expect(script).toMatch(/^\/ui\/_\/app\.[0-9a-f]{12}\.js$/);
    // No inline script anywhere: the one <script> that runs has a src; the others hold JSON data.
    expect(html.match(/<script(?! type="application\/json")/g)).toHaveLength(1);
    const answers = [page];
    for (const path of [script!, style!, "/ui/", "/ui/_/app.000000000000.js", "/ui/Upper:case", `/ui/${REPO}%2fx`]) {
      answers.push(await fetchRegistry(path));
    }
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 404, 404, 404]);
    for (const r of answers) {
      const csp = r.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain("unsafe");
      expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    }
    expect(answers[1]!.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(answers[1]!.headers.get("cache-control")).toContain("immutable");
    expect(page.headers.get("cache-control")).toBe("no-store");
  });

  it("redirects /ui to /ui/, and a semantic tag to the image with that selection", async () => {
    const bare = await fetchRegistry("/ui", { redirect: "manual" });
    expect([bare.status, bare.headers.get("location")]).toEqual([301, "/ui/"]);
    const labelled = await fetchRegistry(`/ui/${REPO}:v1--first`, { redirect: "manual" });
    expect([labelled.status, labelled.headers.get("location")]).toEqual([302, `/ui/${REPO}:v1?sel=first`]);
    expect((await fetchRegistry(`/ui/${REPO}:nope--first`)).status).toBe(404);
  });

  it("renders a shared selection on the server: tag, bytes and commands need no script", async () => {
    const html = await (await fetchRegistry(`/ui/${REPO}:v1?sel=0.0.0.1&platform=linux/amd64`)).text();
    expect(html).toContain(`<code id="sel-ref" data-label="first">registry.test/${REPO}:v1--first</code>`);
    const base = image.platforms[0]!.layers.reduce((n, l) => n + l.size, 0);
    const cells = image.platforms[0]!.allotments.filter((a) => a.row === 0).reduce((n, a) => n + a.layer.size, 0);
    expect(html).toContain(`id="sel-bytes" data-bytes="${base + cells}"`);
    expect(html).toContain(`<code>ctr image pull --plain-http registry.test/${REPO}:v1--first</code>`);
    expect(html).toMatch(/<td class="cell gzip sel"[^>]* data-cell="0.0"/);
    expect(html).toMatch(/<td class="hole"[^>]* data-r="1" data-c="0"/);
  });

  it("shows a field past 100 x 100 a window at a time, and costs a selection from every allotment", async () => {
    const farRepo = `${REPO}-far`;
    const far = await anImage()
      .randomLayers(2, 4096)
      .allotment(0, 0)
      .allotment(150, 120, { compression: "none" })
      .index(false)
      .pushTo(worker, farRepo, "v1");
    const page = async (query: string) => (await fetchRegistry(`/ui/${farRepo}:v1?${query}`)).text();
    const first = await page("sel=0.0.150.120");
    expect(first.match(/<td [^>]*data-r=/g)).toHaveLength(100 * 100);
    expect(first).toContain("rows 0–99 of 151, columns 0–99 of 121");
    const bytes =
      far.platforms[0]!.layers.reduce((n, l) => n + l.size, 0) +
      far.platforms[0]!.allotments.reduce((n, a) => n + a.layer.size, 0);
    expect(first).toContain(`id="sel-bytes" data-bytes="${bytes}"`);
    const data = JSON.parse(/<script type="application\/json" class="field-data">([^<]*)<\/script>/.exec(first)![1]!);
    expect(data.cells.map(([r, c]: [number, number]) => `${r}.${c}`)).toEqual(["0.0", "150.120"]);
    // Far enough down and right, the window ends at the field's last row and column.
    const last = await page("r0=500&c0=90");
    expect(last).toContain("rows 51–150 of 151, columns 21–120 of 121");
    expect(last).toContain('data-cell="150.120"');
    expect(last).not.toContain('data-cell="0.0"');
  });

  it("lists a cell's files as JSON when asked, says why when it cannot, and knows only this repository's blobs", async () => {
    const at = (row: number, col: number) =>
      image.platforms[0]!.allotments.find((a) => a.row === row && a.col === col)!;
    const json = async (digest: string, repo = REPO) => {
      const r = await fetchRegistry(`/ui/${repo}@${digest}`, { headers: { Accept: "application/json" } });
      return { status: r.status, body: r.status === 200 ? ((await r.json()) as Record<string, unknown>) : null };
    };
    // An allotment that is not a tar: the reader says so instead of guessing.
    expect(await json(at(0, 1).layer.digest)).toMatchObject({
      status: 200,
      body: { listed: false, compression: "none", reason: expect.stringMatching(/not a tar header/) },
    });
    expect(await json(at(1, 1).layer.digest)).toMatchObject({
      body: { listed: false, reason: expect.stringMatching(/zstd/) },
    });
    expect((await json(at(0, 0).layer.digest, "ui/other-repo")).status).toBe(404);
    expect((await json(`sha256:${"0".repeat(64)}`)).status).toBe(404);
  });

  it("with token auth, answers a hidden repository exactly like a missing one", async () => {
    const call = workerWith({
      AUTH_MODE: "token",
      AUTH_CONFIG: JSON.stringify({
        users: await usersWithPasswords({ reader: "pw" }),
        rules: [{ repos: "ui/**", pull: ["reader"] }],
      }),
    });
    const hidden = await call(`/ui/${REPO}:v1`);
    const missing = await call("/ui/ui/zzzzzzzz:v1");
    expect([hidden.status, missing.status]).toEqual([404, 404]);
    expect((await hidden.text()).replaceAll(REPO, "NAME")).toBe(
      (await missing.text()).replaceAll("ui/zzzzzzzz", "NAME"),
    );
    const home = await (await call("/ui/")).text();
    expect(home).not.toContain(REPO);
    const signedIn = await call(`/ui/${REPO}:v1`, { headers: { Authorization: `Basic ${btoa("reader:pw")}` } });
    expect(signedIn.status).toBe(200);
    expect(await signedIn.text()).toContain('data-pull-user="reader"');
  });
});
