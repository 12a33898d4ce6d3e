/**
 * A real browser for page tests: Debian's chromium driven by playwright-core (no browser
 * download), headless, with a fresh profile that is removed on close. Every page records what
 * its console reported as an error and every uncaught exception, so a test can require a quiet
 * console; it also records dialogs (alert, confirm), which a page with an injected script would
 * open.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface WatchedPage {
  page: Page;
  /** Console errors and uncaught exceptions, in order. */
  errors: string[];
  /** Messages of dialogs the page opened (each was dismissed). */
  dialogs: string[];
}

export interface Browser {
  context: BrowserContext;
  open(url: string, viewport?: { width: number; height: number }): Promise<WatchedPage>;
  close(): Promise<void>;
}

export async function startBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`browser tests need ${CHROMIUM}: apt-get install -y chromium`);
  }
  const profile = await mkdtemp(join(tmpdir(), "2dfs-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    open: async (url, viewport) => {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize(viewport);
      const watched: WatchedPage = { page, errors: [], dialogs: [] };
      page.on("console", (msg) => {
        if (msg.type() === "error") watched.errors.push(msg.text());
      });
      page.on("pageerror", (e) => watched.errors.push(`uncaught: ${e.message}`));
      page.on("dialog", (d) => {
        watched.dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(url);
      return watched;
    },
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
