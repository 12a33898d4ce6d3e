/**
 * The web view of a registry with token auth, in chromium: an anonymous visitor sees the public
 * repository and nothing of the private one (not listed, and its pages answer like a missing
 * one), and a user who signs in through the page's form sees what the rules let them pull. The
 * token stays in the tab's sessionStorage: no cookie, nothing in localStorage.
 *
 * The images are pushed while the registry runs open, then it restarts on the same storage with
 * auth on, as in auth-skopeo.test.ts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anImage } from "../helpers/images/builder.ts";
import { writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { overHttp, push } from "../helpers/images/push.ts";
import { startBrowser, type Browser, type WatchedPage } from "../helpers/browser.ts";
import { REPO_ROOT, run } from "../helpers/process.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

const PUBLIC = "public/model";
const PRIVATE = "private/model";
const PASSWORD = "reader password";
/** What chromium logs for a page answered with 404: expected exactly where a page is hidden. */
const NOT_FOUND_LOG = "Failed to load resource: the server responded with a status of 404 (Not Found)";

describe("the web view with token auth, in chromium", () => {
  let registry: Registry;
  let browser: Browser;
  let work: string;
  let privateImage: WrittenImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-ui-auth-"));
    const persistDir = join(work, "state");
    let open: Registry;
    let publicImage: WrittenImage;
    [open, publicImage, privateImage] = await Promise.all([
      startRegistry({ persistDir, vars: { AUTH_MODE: "none" } }),
      writeImage(
        join(work, "public"),
        anImage()
          .randomLayers(2, 32 * 1024)
          .name(PUBLIC)
          .grid(1, 2),
      ),
      writeImage(
        join(work, "private"),
        anImage()
          .randomLayers(2, 32 * 1024)
          .name(PRIVATE)
          .grid(2, 2),
      ),
    ]);
    try {
      await push(overHttp(open.url), PUBLIC, publicImage, "v1");
      await push(overHttp(open.url), PRIVATE, privateImage, "v1");
    } finally {
      await open.stop();
    }
    const { stdout: hash } = await run(process.execPath, [join(REPO_ROOT, "scripts", "hash-password.ts")], {
      input: PASSWORD,
    });
    const config = {
      users: { reader: { password: hash.trim() } },
      rules: [
        { repos: "public/**", anonymousPull: true },
        { repos: "private/**", pull: ["reader"] },
      ],
    };
    [registry, browser] = await Promise.all([
      startRegistry({
        persistDir,
        vars: {
          AUTH_MODE: "token",
          AUTH_CONFIG: JSON.stringify(config),
          TOKEN_SIGNING_KEY: "e2e-ui-signing-key-0123456789abcdefghij",
        },
      }),
      startBrowser(),
    ]);
  });

  afterAll(async () => {
    await browser?.close();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function open(path: string): Promise<WatchedPage> {
    const w = await browser.open(`${registry.url}${path}`);
    await w.page.waitForLoadState("load");
    return w;
  }

  const listed = (page: Page): Promise<string[]> => page.locator("#repos li").allTextContents();

  it("shows an anonymous visitor the public repository and nothing of the private one", async () => {
    const home = await open("/ui/");
    expect(await listed(home.page)).toEqual([PUBLIC]);
    const image = await open(`/ui/${PUBLIC}:v1`);
    expect(await image.page.locator("section.platform-field td[data-cell]").count()).toBe(2);
    expect([...home.errors, ...image.errors]).toEqual([]);

    const privateDigest = privateImage.platforms[0]!.allotments[0]!.layer.descriptor.digest;
    for (const path of [`/ui/${PRIVATE}`, `/ui/${PRIVATE}:v1`, `/ui/${PRIVATE}@${privateDigest}`, "/ui/no/such"]) {
      const res = await fetch(`${registry.url}${path}`);
      const body = await res.text();
      expect(res.status, path).toBe(404);
      expect(body, path).toContain("Nothing is here, or you may not pull it.");
      expect(body, path).not.toContain("data-cell");
      const hidden = await open(path);
      expect(await hidden.page.locator("h1").textContent(), path).toBe("Not found");
      expect(hidden.errors, path).toEqual([NOT_FOUND_LOG]);
    }
    // The search box finds nothing private either.
    const search = await open("/ui/?q=private");
    expect(await listed(search.page)).toEqual([]);
  });

  it("treats a token the registry did not sign as no credentials", async () => {
    const res = await fetch(`${registry.url}/ui/`, { headers: { Authorization: "Bearer not-a-token" } });
    const body = await res.text();
    expect(body).toContain(`data-repo="${PUBLIC}"`);
    expect(body).not.toContain(PRIVATE);
    expect(body).toContain('data-stale="1"');
  });

  it("refuses a wrong password in the sign-in form and keeps no token", async () => {
    const { page, errors } = await open("/ui/");
    await page.fill('#signin input[name="username"]', "reader");
    await page.fill('#signin input[name="password"]', "wrong");
    await page.click('#signin button[type="submit"]');
    await expect.poll(() => page.locator("#signin-error").textContent()).toBe("invalid username or password");
    expect(await page.evaluate<number>("sessionStorage.length")).toBe(0);
    // The registry answered the password grant with 401, which chromium logs; nothing else went wrong.
    expect(errors).toEqual([expect.stringMatching(/status of 401/)]);
  });

  it("signs in with the form, keeps the token in the tab only, and shows the private repository", async () => {
    const { page, errors } = await open("/ui/");
    await page.fill('#signin input[name="username"]', "reader");
    await page.fill('#signin input[name="password"]', PASSWORD);
    await page.click('#signin button[type="submit"]');
    await expect.poll(() => listed(page)).toEqual([PRIVATE, PUBLIC]);
    expect(await page.locator("#user-name").textContent()).toBe("reader");
    expect(await page.evaluate<number>("localStorage.length")).toBe(0);
    expect(await page.evaluate<string>("Object.keys(sessionStorage).join()")).toBe("2dfs-ui-token");
    expect(await browser.context.cookies()).toEqual([]);
    expect(errors).toEqual([]);

    // A page of the private repository, opened in the same tab: rendered for the token holder.
    await page.goto(`${registry.url}/ui/${PRIVATE}:v1`);
    await expect.poll(() => page.locator("section.platform-field td[data-cell]").count()).toBe(4);
    // Pulling it takes credentials: the commands that can ask for a password name the user.
    await page.locator('section.platform-field td[data-cell="0.0"]').click();
    const ref = `${registry.host}/${PRIVATE}:v1--0.0.0.0`;
    expect(await page.locator('#sel-commands li[data-tool="ctr"] code').textContent()).toBe(
      `ctr image pull --plain-http --user reader ${ref}`,
    );
    expect(await page.locator('#sel-commands li[data-tool="skopeo"] code').textContent()).toBe(
      `skopeo copy --src-tls-verify=false --src-creds reader docker://${ref} oci:./model-0.0.0.0:v1`,
    );
    await page.click("#signout");
    await page.waitForLoadState("load");
    await expect.poll(() => page.locator("h1").textContent()).toBe("Not found");
  });
});
