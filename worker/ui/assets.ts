/**
 * The client script and stylesheet, served by the Worker itself (no CDN). Their addresses carry
 * a hash of their content, so browsers may cache them for good and a new version is a new URL.
 * The bytes are built from worker/ui/client/ by scripts/build-ui-client.ts into assets.gen.ts.
 */
import { CLIENT_JS, CLIENT_JS_HASH, STYLE_CSS, STYLE_CSS_HASH } from "./assets.gen.ts";

export const ASSET_PREFIX = "/ui/_/";
export const SCRIPT_PATH = `${ASSET_PREFIX}app.${CLIENT_JS_HASH}.js`;
export const STYLE_PATH = `${ASSET_PREFIX}style.${STYLE_CSS_HASH}.css`;
/** Browsers ask for an icon; without one every page would log a failed request. */
export const ICON_PATH = `${ASSET_PREFIX}icon.svg`;
const ICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">' +
  '<rect x="1" y="1" width="6" height="6" fill="#2f81f7"/><rect x="9" y="1" width="6" height="6" fill="#8c959f"/>' +
  '<rect x="1" y="9" width="6" height="6" fill="#8c959f"/><rect x="9" y="9" width="6" height="6" fill="#2f81f7"/></svg>';

/** The asset at `path`, or undefined. */
export function asset(path: string): { body: string; type: string } | undefined {
  if (path === SCRIPT_PATH) return { body: CLIENT_JS, type: "text/javascript; charset=utf-8" };
  if (path === STYLE_PATH) return { body: STYLE_CSS, type: "text/css; charset=utf-8" };
  if (path === ICON_PATH) return { body: ICON, type: "image/svg+xml" };
  return undefined;
}
