/**
 * The web view in a real browser (Debian chromium through playwright-core) against the registry
 * as a user runs it (`wrangler dev`). A two-platform 2DFS image with a hole goes in; the test
 * browses to it, drags over cells, and checks the semantic tag, the byte figures and the commands
 * the page shows. It then runs the shown ctr command on containerd (the edge device) and checks
 * the files that arrive, checks the update-cost figure against what containerd fetched for
 * v1 -> v2, and shows that an image whose annotations and partition names carry markup runs no
 * script. Every page must leave the console without errors.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { MediaType, type Compression } from "../../core/oci/media-types.ts";
import { anImage } from "../helpers/images/builder.ts";
import { writeImage, type FileBlob, type WrittenImage } from "../helpers/images/layout.ts";
import { overHttp, push } from "../helpers/images/push.ts";
import { allotmentsAt, expectedFiles, platformOf, type Cell } from "../helpers/images/selection.ts";
import type { BuiltPlatform } from "../helpers/images/types.ts";
import { startBrowser, type Browser, type WatchedPage } from "../helpers/browser.ts";
import { startContainerd } from "../helpers/containerd.ts";
import { blobGets, logMark, requestsSince } from "../helpers/request-log.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

const REPO = "e2e/model";
const PLATFORMS = ["linux/amd64", "linux/arm64"];
/** The named partition "edge": rows 1-2, columns 0-1, around the hole at (1,1). */
const EDGE: Cell[] = [
  [1, 0],
  [2, 0],
  [2, 1],
];
/** Allotments that v2 changes. */
const CHANGED: Cell[] = [
  [0, 0],
  [2, 2],
];
const HOSTILE_NAME = "<script>window.__pwned = 'name'</script>";
const HOSTILE_PARTITION = "<img src=x onerror=\"window.__pwned = 'partition'\">";
const HOSTILE_VALUE = "<script>window.__pwned = 'value'</script>";

describe("the web view in chromium", () => {
  let registry: Registry;
  let browser: Browser;
  let work: string;
  let v1: WrittenImage;
  let v2: WrittenImage;
  const opened: WatchedPage[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-ui-"));
    [registry, browser, v1] = await Promise.all([
      startRegistry({ vars: { AUTH_MODE: "none" } }),
      startBrowser(),
      writeImage(
        join(work, "model"),
        modelImage()
          .randomLayers(2, 32 * 1024)
          .grid(3, 3)
          .hole(1, 1)
          .allotment(0, 1, { compression: "none" })
          .allotment(2, 0, { compression: "zstd" }),
        "v1",
      ),
    ]);
    v2 = await nextVersion(v1, CHANGED);
    await push(overHttp(registry.url), REPO, v1, "v1");
    await push(overHttp(registry.url), REPO, v2, "v2");
  });

  afterAll(async () => {
    // Every page the suite opened kept a quiet console.
    for (const w of opened) expect(w.errors, w.page.url()).toEqual([]);
    await browser?.close();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function open(path: string, viewport?: { width: number; height: number }): Promise<Page> {
    const w = await browser.open(`${registry.url}${path}`, viewport);
    opened.push(w);
    return w.page;
  }

  const bytesOf = (p: BuiltPlatform<FileBlob>, cells: readonly Cell[]): number =>
    [...p.layers.map((l) => l.descriptor.size), ...allotmentsAt(p, cells).map((a) => a.layer.descriptor.size)].reduce(
      (a, b) => a + b,
      0,
    );
  const ref = (tag: string, label: string): string => `${registry.host}/${REPO}:${tag}--${label}`;

  it("lists the repository, filters it, and lists its tags newest first with platforms, size and field", async () => {
    const page = await open("/ui/");
    await expect.poll(() => page.locator("#repos li").allTextContents()).toEqual([REPO]);
    await page.fill("#repo-filter", "nothing-like-it");
    expect(await page.locator("#repos li:not([hidden])").count()).toBe(0);
    await page.fill("#repo-filter", "mod");
    await page.click(`#repos a:text-is("${REPO}")`);
    await page.waitForURL(`**/ui/${REPO}`);
    expect(
      await page.locator("#tags tbody tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-tag"))),
    ).toEqual(["v2", "v1"]);
    const v1Row = page.locator('#tags tr[data-tag="v1"]');
    expect(await v1Row.locator("td").nth(3).textContent()).toBe(PLATFORMS.join(", "));
    expect(await v1Row.locator("td.has-field").textContent()).toBe("3×3, 8 allotments");
    const size = Number(await v1Row.locator("td[data-bytes]").getAttribute("data-bytes"));
    const blobs = new Map<string, number>();
    for (const p of v1.platforms) {
      for (const d of [p.config, p.field!, ...p.layers, ...p.allotments.map((a) => a.layer)]) {
        blobs.set(d.digest, d.size);
      }
    }
    expect(size).toBe([...blobs.values()].reduce((a, b) => a + b, 0));
  });

  it("shows the field as a grid: every allotment a data-cell with size and compression, the hole empty", async () => {
    const page = await open(`/ui/${REPO}:v1`);
    const grid = page.locator('section.platform-field[data-platform="linux/amd64"]');
    expect(await grid.isVisible()).toBe(true);
    expect(await page.locator('section.platform-field[data-platform="linux/arm64"]').isVisible()).toBe(false);
    const cells = await grid
      .locator("td[data-cell]")
      .evaluateAll((tds) =>
        tds.map((td) => [td.getAttribute("data-cell"), td.getAttribute("data-size"), td.getAttribute("data-comp")]),
      );
    const amd64 = platformOf(v1, "linux/amd64");
    expect(cells).toEqual(
      amd64.allotments.map((a) => [
        `${a.row}.${a.col}`,
        String(a.layer.descriptor.size),
        a.row === 0 && a.col === 1 ? "tar" : a.row === 2 && a.col === 0 ? "zstd" : "gzip",
      ]),
    );
    const hole = grid.locator('td[data-r="1"][data-c="1"]');
    expect(await hole.getAttribute("data-cell")).toBeNull();
    expect((await hole.textContent())?.trim()).toBe("");
    expect(await grid.locator('td[data-cell="0.1"]').textContent()).toContain("tar");
    expect(await page.locator("#partitions button[data-partition]").allTextContents()).toEqual(["edge"]);
    if (process.env.UI_SCREENSHOT) {
      await drag(page, "1.0", "2.1");
      await page.screenshot({ path: process.env.UI_SCREENSHOT });
    }
  });

  it("drag selects a rectangle, shift-drag adds one, and the tag, bytes and commands follow", async () => {
    const page = await open(`/ui/${REPO}:v1`);
    const amd64 = platformOf(v1, "linux/amd64");
    expect(await page.locator("#sel-problem").textContent()).toContain("Select cells");

    await drag(page, "0.0", "1.1");
    expect(await text(page, "#sel-ref")).toBe(ref("v1", "0.0.1.1"));
    expect(await selectedCells(page)).toEqual(["0.0", "0.1", "1.0"]);
    expect(await figure(page, "#sel-bytes")).toBe(
      bytesOf(amd64, [
        [0, 0],
        [0, 1],
        [1, 0],
      ]),
    );

    await drag(page, "2.2", "2.2", { shift: true });
    expect(await text(page, "#sel-ref")).toBe(ref("v1", "0.0.1.1--2.2.2.2"));
    expect(await figure(page, "#sel-bytes")).toBe(
      bytesOf(amd64, [
        [0, 0],
        [0, 1],
        [1, 0],
        [2, 2],
      ]),
    );

    // A fresh drag replaces the selection; the cells of "edge" are named by it.
    await drag(page, "1.0", "2.1");
    expect(await text(page, "#sel-ref")).toBe(ref("v1", "edge"));
    expect(await page.locator('#partitions button[data-partition="edge"]').getAttribute("aria-pressed")).toBe("true");
    expect(await figure(page, "#sel-bytes")).toBe(bytesOf(amd64, EDGE));
    expect(await commands(page)).toEqual({
      ctr: `ctr image pull --plain-http --platform linux/amd64 ${ref("v1", "edge")}`,
      docker: `docker pull --platform linux/amd64 ${ref("v1", "edge")}`,
      podman: `podman pull --tls-verify=false --platform linux/amd64 ${ref("v1", "edge")}`,
      skopeo: `skopeo copy --src-tls-verify=false --override-os linux --override-arch amd64 docker://${ref("v1", "edge")} oci:./model-edge:v1`,
      "2dfs-push": `npx 2dfs-push export --plain-http --platform linux/amd64 ${ref("v1", "edge")} ./model-edge`,
    });
    // The address now names the view, so it can be shared.
    expect(new URL(page.url()).searchParams.get("sel")).toBe("edge");

    // Choosing the partition by name selects the same cells.
    await page.click("#clear-selection");
    expect(await selectedCells(page)).toEqual([]);
    await page.click('#partitions button[data-partition="edge"]');
    expect(await selectedCells(page)).toEqual(["1.0", "2.0", "2.1"]);
  });

  it("selects with the keyboard: Enter starts a rectangle, Shift+arrows grow it, Shift+Enter adds one", async () => {
    const page = await open(`/ui/${REPO}:v1`);
    await page.focus("section.platform-field:not([hidden]) table.field");
    await page.keyboard.press("Enter");
    await page.keyboard.press("Shift+ArrowRight");
    await page.keyboard.press("Shift+ArrowRight");
    expect(await text(page, "#sel-ref")).toBe(ref("v1", "0.0.0.2"));
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Shift+Enter");
    expect(await text(page, "#sel-ref")).toBe(ref("v1", "0.0.0.2--2.2.2.2"));
    await page.keyboard.press("Escape");
    expect(await selectedCells(page)).toEqual([]);
  });

  it("switches platform; the shown ctr command pulls exactly the selected files onto containerd", async () => {
    const page = await open(`/ui/${REPO}:v1`);
    await drag(page, "1.0", "2.1");
    await page.click('#platforms a[data-platform="linux/arm64"]');
    expect(await page.locator('section.platform-field[data-platform="linux/arm64"]').isVisible()).toBe(true);
    const arm64 = platformOf(v1, "linux/arm64");
    expect(await figure(page, "#sel-bytes")).toBe(bytesOf(arm64, EDGE));
    const shown = (await commands(page)).ctr!;
    expect(shown).toBe(`ctr image pull --plain-http --platform linux/arm64 ${ref("v1", "edge")}`);

    const containerd = await startContainerd();
    try {
      await runShownCtr(containerd.ctr, shown);
      expect(await containerd.files(ref("v1", "edge"), "linux/arm64")).toEqual(expectedFiles(arm64, EDGE));
    } finally {
      await containerd.stop();
    }
  });

  it("lists the files of a plain tar cell and of a gzip cell, and says a zstd cell is not listed", async () => {
    const page = await open(`/ui/${REPO}:v1`);
    const amd64 = platformOf(v1, "linux/amd64");
    for (const [cell, [r, c]] of [
      ["0.1", [0, 1]],
      ["0.0", [0, 0]],
    ] as const) {
      await drag(page, cell, cell);
      const files = allotmentsAt(amd64, [[r, c]])[0]!.layer.files;
      await expect
        .poll(async () =>
          (await page.locator("#cell-files li code").allTextContents()).filter((f) => files.includes(f)),
        )
        .toEqual(files);
    }
    await drag(page, "2.0", "2.0");
    await expect.poll(() => page.locator("#cell-files").textContent()).toContain("not listed");
  });

  it("compares v2 with v1: changed cells are marked, and the update cost is what containerd fetches", async () => {
    const page = await open(`/ui/${REPO}:v2`);
    await drag(page, "0.0", "2.2");
    await page.selectOption('select[name="compare"]', "v1");
    await Promise.all([page.waitForURL(/compare=v1/), page.click('#compare-form button[type="submit"]')]);
    const changed = await page
      .locator("section.platform-field:not([hidden]) td.changed")
      .evaluateAll((tds) => tds.map((td) => td.getAttribute("data-cell")));
    expect(changed).toEqual(CHANGED.map(([r, c]) => `${r}.${c}`));
    const amd64v2 = platformOf(v2, "linux/amd64");
    const figureShown = await figure(page, "#sel-update");
    expect(figureShown).toBe(allotmentsAt(amd64v2, CHANGED).reduce((n, a) => n + a.layer.descriptor.size, 0));
    const shown = (await commands(page)).ctr!;
    expect(shown).toBe(`ctr image pull --plain-http --platform linux/amd64 ${ref("v2", "0.0.2.2")}`);

    const containerd = await startContainerd();
    try {
      await containerd.pull(ref("v1", "0.0.2.2"), { platform: "linux/amd64" });
      const mark = logMark(registry);
      await runShownCtr(containerd.ctr, shown);
      const fetched = blobGets(await requestsSince(registry, mark), REPO) as Digest[];
      const layerSizes = new Map<string, number>(
        [...amd64v2.layers.map((l) => l.descriptor), ...amd64v2.allotments.map((a) => a.layer.descriptor)].map((d) => [
          d.digest,
          d.size,
        ]),
      );
      const layers = fetched.filter((d) => layerSizes.has(d));
      // Besides layers, only the partition's config is new to the device.
      expect(fetched.length - layers.length).toBe(1);
      expect(layers.reduce((n, d) => n + layerSizes.get(d)!, 0)).toBe(figureShown);
      expect(await containerd.files(ref("v2", "0.0.2.2"), "linux/amd64")).toEqual(
        expectedFiles(
          amd64v2,
          amd64v2.allotments.map((a) => [a.row, a.col]),
        ),
      );
    } finally {
      await containerd.stop();
    }
  });

  it("escapes what an image says: markup in annotations and partition names runs no script", async () => {
    const img = await writeImage(
      join(work, "hostile"),
      anImage()
        .randomLayers(2, 32 * 1024)
        .name(HOSTILE_NAME)
        .grid(1, 2)
        .partition(HOSTILE_PARTITION, "0.0.0.0")
        .partition("evil", HOSTILE_VALUE),
    );
    await push(overHttp(registry.url), "e2e/hostile", img, "v1");
    const plain = await writeImage(
      join(work, "plain"),
      anImage().randomLayers(2, 10_000).manifestAnnotations({ "org.example.note": HOSTILE_VALUE }),
      "v1",
    );
    await skopeo.copy(plain.ref, `docker://${registry.host}/e2e/plain:v1`);

    for (const path of ["/ui/", "/ui/e2e/hostile", "/ui/e2e/hostile:v1", "/ui/e2e/plain:v1"]) {
      const w = opened[opened.push(await browser.open(`${registry.url}${path}`)) - 1]!;
      await w.page.waitForLoadState("load");
      expect(await w.page.evaluate(() => "__pwned" in globalThis), path).toBe(false);
      expect(w.dialogs, path).toEqual([]);
      expect(await w.page.locator('main img, main script:not([type="application/json"])').count(), path).toBe(0);
    }
    const page = opened.at(-2)!.page;
    expect(await page.locator(".annotations dd").allTextContents()).toContain(HOSTILE_NAME);
    expect(await page.locator("#partitions .unusable .name").allTextContents()).toEqual([HOSTILE_PARTITION]);
    expect(await page.locator('#partitions button[data-partition="evil"] + code').textContent()).toBe(HOSTILE_VALUE);
    // Choosing the partition whose value is markup selects nothing and still runs nothing.
    await page.click('#partitions button[data-partition="evil"]');
    expect(await page.evaluate(() => "__pwned" in globalThis)).toBe(false);

    const plainPage = opened.at(-1)!.page;
    expect(await plainPage.locator("details.platform-details .annotations dd").allTextContents()).toEqual([
      HOSTILE_VALUE,
    ]);
    expect(await plainPage.locator("details.platform-details table.layers tbody tr").count()).toBe(2);
    expect(await plainPage.locator(".referrers").textContent()).toContain("No artifact refers to this image");

    const res = await fetch(`${registry.url}/ui/e2e/hostile:v1`);
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await res.text()).not.toContain("<script>window.__pwned");
  });

  it("fits a phone-width screen: nothing overflows the page, the grid scrolls inside its box", async () => {
    const page = await open(`/ui/${REPO}:v1?sel=edge`, { width: 390, height: 844 });
    expect(await page.evaluate<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    expect(await text(page, "#sel-ref")).toBe(ref("v1", "edge"));
    const grid = await page.locator("section.platform-field:not([hidden]) .grid-scroll").boundingBox();
    const panel = await page.locator("#selection").boundingBox();
    expect(panel!.y).toBeGreaterThan(grid!.y + grid!.height - 1);
  });

  it("shows a field past 100 × 100 a window at a time; the selection counts cells off screen", async () => {
    const far = await writeImage(
      join(work, "far"),
      anImage()
        .randomLayers(2, 32 * 1024)
        .name("e2e/far")
        .allotment(0, 0)
        .allotment(150, 120)
        .allotmentBytes(16),
    );
    await push(overHttp(registry.url), "e2e/far", far, "v1");
    const page = await open("/ui/e2e/far:v1");
    expect(await page.locator("section.platform-field td[data-r]").count()).toBe(100 * 100);
    await drag(page, "0.0", "99.99");
    // Move the window to the far corner through the page's own links, then shift-drag to add it.
    await Promise.all([page.waitForURL(/r0=50/), page.click('nav.window a:text("▼ rows")')]);
    await Promise.all([page.waitForURL(/r0=100/), page.click('nav.window a:text("▼ rows")')]);
    await Promise.all([page.waitForURL(/c0=50/), page.click('nav.window a:text("▶ columns")')]);
    // The selection made before the moves came along in the address.
    expect(await text(page, "#sel-ref")).toBe(`${registry.host}/e2e/far:v1--0.0.99.99`);
    await drag(page, "150.120", "150.120", { shift: true });
    expect(await text(page, "#sel-ref")).toBe(`${registry.host}/e2e/far:v1--0.0.99.99--150.120.150.120`);
    const p = far.platforms[0]!;
    expect(await figure(page, "#sel-bytes")).toBe(
      bytesOf(p, [
        [0, 0],
        [150, 120],
      ]),
    );
  });

  it("keeps a 64 × 64 field usable: the page loads, and a drag over all of it selects every allotment", async () => {
    // 64 x 64 cells, sparse (first row, first column and the diagonal), so that pushing it stays quick.
    const builder = anImage()
      .randomLayers(2, 32 * 1024)
      .name("e2e/big")
      .allotmentBytes(16);
    for (let i = 0; i < 64; i++) builder.allotment(0, i).allotment(i, 0).allotment(i, i);
    const big = await writeImage(join(work, "big"), builder);
    await push(overHttp(registry.url), "e2e/big", big, "v1");
    const started = Date.now();
    const page = await open("/ui/e2e/big:v1");
    expect(await page.locator("section.platform-field td[data-r]").count()).toBe(64 * 64);
    expect(await page.locator("section.platform-field td[data-cell]").count()).toBe(
      big.platforms[0]!.allotments.length,
    );
    await drag(page, "0.0", "63.63");
    expect(await text(page, "#sel-ref")).toBe(`${registry.host}/e2e/big:v1--0.0.63.63`);
    expect((await selectedCells(page)).length).toBe(big.platforms[0]!.allotments.length);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

/** Drags from one cell to another (`row.col`, holes too), holding Shift to add a rectangle. */
async function drag(page: Page, from: string, to: string, opts: { shift?: boolean } = {}): Promise<void> {
  const center = async (pos: string): Promise<{ x: number; y: number }> => {
    const [r, c] = pos.split(".");
    const cell = page.locator(`section.platform-field:not([hidden]) td[data-r="${r}"][data-c="${c}"]`);
    await cell.scrollIntoViewIfNeeded();
    const box = (await cell.boundingBox())!;
    return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  };
  const a = await center(from);
  if (opts.shift) await page.keyboard.down("Shift");
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  const b = await center(to);
  await page.mouse.move(b.x, b.y, { steps: 6 });
  await page.mouse.up();
  if (opts.shift) await page.keyboard.up("Shift");
}

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.locator(selector).textContent()) ?? "").trim();
}

async function figure(page: Page, selector: string): Promise<number> {
  return Number(await page.locator(selector).getAttribute("data-bytes"));
}

async function selectedCells(page: Page): Promise<string[]> {
  return page
    .locator("section.platform-field:not([hidden]) td.sel[data-cell]")
    .evaluateAll((tds) => tds.map((td) => td.getAttribute("data-cell") ?? ""));
}

async function commands(page: Page): Promise<Record<string, string>> {
  const items = await page
    .locator("#sel-commands li")
    .evaluateAll((lis) =>
      lis.map((li) => [li.getAttribute("data-tool") ?? "", li.querySelector("code")?.textContent ?? ""]),
    );
  return Object.fromEntries(items);
}

/** Runs a `ctr image pull ...` command as shown, on this containerd, unpacking with the native snapshotter. */
async function runShownCtr(ctr: (args: readonly string[]) => Promise<unknown>, shown: string): Promise<void> {
  const [tool, image, pull, ...rest] = shown.split(" ");
  expect([tool, image, pull]).toEqual(["ctr", "image", "pull"]);
  await ctr([image!, pull!, "--snapshotter", "native", ...rest]);
}

/** The model image of these tests, less its allotments. */
function modelImage() {
  return anImage()
    .platforms(PLATFORMS)
    .name(REPO)
    .partition("edge", "1.0.2.1")
    .allotmentBytes(64 * 1024);
}

/** v2 of an image: the same base and allotments, except new allotments at `changed` (same compression). */
async function nextVersion(v1: WrittenImage, changed: readonly Cell[]): Promise<WrittenImage> {
  const isChanged = (a: { row: number; col: number }): boolean => changed.some(([r, c]) => r === a.row && c === a.col);
  const builder = modelImage()
    .layersFrom((platform) => platformOf(v1, platform).layers)
    .allotmentsFrom((platform) => platformOf(v1, platform).allotments.filter((a) => !isChanged(a)));
  for (const a of v1.platforms[0]!.allotments.filter(isChanged)) {
    builder.allotment(a.row, a.col, { compression: compressionOf(a.layer.descriptor.mediaType) });
  }
  return writeImage(v1.layout, builder, "v2");
}

function compressionOf(mediaType: string): Compression {
  if (mediaType === MediaType.OciLayerZstd) return "zstd";
  return mediaType === MediaType.OciLayerTar ? "none" : "gzip";
}
