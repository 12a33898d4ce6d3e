/**
 * The field page in the browser: drag over cells to select a rectangle, shift-drag to add one,
 * or use the keyboard; choose a named partition or a platform; copy a command. The figures come
 * from the same code that rendered the page on the server (../selection.ts), read back from the
 * grid's data attributes, so both always agree.
 */
import { parseLabel, selects, type Rect } from "../../../core/tdfs/label.ts";
import { formatBytes } from "../format.ts";
import {
  cellKey,
  summarize,
  type CellInfo,
  type FieldData,
  type PlatformField,
  type PullTarget,
} from "../selection.ts";

type Headers = () => Promise<Record<string, string>>;
type Pos = [row: number, col: number];

const ZOOM_LEVELS = 5;
const FILES_SHOWN = 200;

export function initField(authHeaders: Headers): void {
  const root = document.querySelector<HTMLElement>("#image");
  if (!root || !root.querySelector("section.platform-field")) return;
  const target: PullTarget = {
    host: root.dataset.host ?? location.host,
    plainHttp: root.dataset.plainHttp === "1",
    repo: root.dataset.repo ?? "",
    tag: root.dataset.tag ?? "",
    multiPlatform: root.dataset.multiPlatform === "1",
  };
  if (root.dataset.pullUser) target.user = root.dataset.pullUser;
  const partitions: Record<string, string> = {};
  for (const b of root.querySelectorAll<HTMLButtonElement>("#partitions button[data-partition]")) {
    partitions[b.dataset.partition ?? ""] = b.dataset.label ?? "";
  }
  const params = new URLSearchParams(location.search);
  let platform = visibleSection()?.dataset.platform ?? "";
  let rects: Rect[] = initialRects(params.get("sel"), partitions);
  let drag: { anchor: Pos; base: Rect[] } | undefined;
  let cursor: Pos = [0, 0];
  let keyAnchor: Pos | undefined;

  function visibleSection(): HTMLElement | null {
    return root!.querySelector<HTMLElement>("section.platform-field:not([hidden])");
  }
  function table(): HTMLTableElement | null {
    return visibleSection()?.querySelector("table.field") ?? null;
  }
  function cellAt([r, c]: Pos): HTMLElement | null {
    return table()?.querySelector<HTMLElement>(`td[data-r="${r}"][data-c="${c}"]`) ?? null;
  }
  /** The rows and columns on screen: [first row, first column, last row, last column]. */
  function bounds(): [number, number, number, number] {
    const d = visibleSection()?.dataset ?? {};
    const r0 = Number(d.r0 ?? 0);
    const c0 = Number(d.c0 ?? 0);
    return [r0, c0, r0 + Number(d.rows ?? 1) - 1, c0 + Number(d.cols ?? 1) - 1];
  }

  const parsed = new WeakMap<HTMLElement, PlatformField>();
  /** Every allotment of the section's platform, from its JSON block (cells off screen included). */
  function fieldData(section: HTMLElement): PlatformField {
    const known = parsed.get(section);
    if (known) return known;
    const json = JSON.parse(section.querySelector("script.field-data")?.textContent ?? "{}") as FieldData;
    const data: PlatformField = {
      platform: section.dataset.platform ?? "",
      base: (json.base ?? []).map(([digest, size]) => ({ digest, size })),
      cells: (json.cells ?? []).map(([row, col, digest, size]): CellInfo => ({
        row,
        col,
        digest,
        size,
        compression: "",
      })),
    };
    if (json.previous) {
      data.previous = {
        base: json.previous.base,
        cells: new Map(json.previous.cells.map(([row, col, digest]) => [cellKey(row, col), digest])),
      };
    }
    parsed.set(section, data);
    return data;
  }

  function render(): void {
    const section = visibleSection();
    if (!section) return;
    for (const td of section.querySelectorAll<HTMLElement>("td[data-r]")) {
      const on = selects(rects, Number(td.dataset.r), Number(td.dataset.c));
      td.classList.toggle("sel", on);
      if (td.dataset.cell !== undefined) td.setAttribute("aria-selected", on ? "true" : "false");
    }
    const s = summarize(fieldData(section), rects, partitions, target);
    const problem = document.querySelector<HTMLElement>("#sel-problem");
    if (problem) {
      problem.hidden = s.problem === undefined;
      problem.textContent = s.problem ?? "";
    }
    const ref = document.querySelector<HTMLElement>("#sel-ref");
    if (ref) {
      ref.textContent = s.problem === undefined ? s.reference : "";
      ref.dataset.label = s.label;
    }
    const bytes = document.querySelector<HTMLElement>("#sel-bytes");
    if (bytes) {
      bytes.dataset.bytes = String(s.bytes);
      bytes.textContent = `${formatBytes(s.bytes)} (${s.allotments} allotment${s.allotments === 1 ? "" : "s"} + base layers)`;
    }
    const update = document.querySelector<HTMLElement>("#sel-update");
    if (update && s.updateBytes !== undefined) {
      update.dataset.bytes = String(s.updateBytes);
      update.textContent = `${formatBytes(s.updateBytes)} of layers to fetch, plus manifests and config`;
    }
    const list = document.querySelector<HTMLElement>("#sel-commands");
    if (list) {
      list.replaceChildren(
        ...s.commands.map((cmd) => {
          const li = document.createElement("li");
          li.dataset.tool = cmd.tool;
          const code = document.createElement("code");
          code.textContent = cmd.text;
          const button = document.createElement("button");
          button.type = "button";
          button.className = "copy";
          button.textContent = "Copy";
          li.append(code, " ", button);
          return li;
        }),
      );
    }
    for (const b of root!.querySelectorAll<HTMLButtonElement>("#partitions button[data-partition]")) {
      b.setAttribute("aria-pressed", s.label === b.dataset.partition && rects.length > 0 ? "true" : "false");
    }
    remember(rects.length > 0 && s.problem === undefined ? s.label : "");
  }

  /** Keeps the address shareable: `?sel=` and `?platform=` reopen this view. */
  function remember(label: string): void {
    const next = new URLSearchParams(location.search);
    if (label) next.set("sel", label);
    else next.delete("sel");
    next.set("platform", platform);
    history.replaceState(null, "", `?${next.toString()}`);
    // Links that move a large field's window keep the selection and platform.
    for (const a of root!.querySelectorAll<HTMLAnchorElement>("a[data-window]")) {
      const q = new URLSearchParams(a.search);
      const moved = new URLSearchParams(next);
      moved.set("r0", q.get("r0") ?? "0");
      moved.set("c0", q.get("c0") ?? "0");
      a.search = `?${moved.toString()}`;
    }
    const form = document.querySelector<HTMLFormElement>("#compare-form");
    if (form) {
      const sel = form.elements.namedItem("sel");
      const plat = form.elements.namedItem("platform");
      if (sel instanceof HTMLInputElement) sel.value = label;
      if (plat instanceof HTMLInputElement) plat.value = platform;
    }
  }

  function posOf(el: Element | null): Pos | undefined {
    const td = el?.closest<HTMLElement>("td[data-r]");
    if (!td || !table()?.contains(td)) return undefined;
    return [Number(td.dataset.r), Number(td.dataset.c)];
  }

  function setCursor(p: Pos): void {
    cellAt(cursor)?.classList.remove("cursor");
    cursor = p;
    const el = cellAt(p);
    el?.classList.add("cursor");
    el?.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  async function showCell(p: Pos): Promise<void> {
    const td = cellAt(p);
    const box = document.querySelector<HTMLElement>("#cell-info");
    const title = document.querySelector<HTMLElement>("#cell-title");
    const facts = document.querySelector<HTMLElement>("#cell-facts");
    const files = document.querySelector<HTMLElement>("#cell-files");
    if (!box || !title || !facts || !files) return;
    box.hidden = false;
    title.textContent = `Cell (${p[0]}, ${p[1]})`;
    files.replaceChildren();
    if (!td || td.dataset.cell === undefined) {
      facts.textContent = "A hole: no allotment here.";
      return;
    }
    const digest = td.dataset.digest ?? "";
    facts.textContent = `${formatBytes(Number(td.dataset.size))}, ${td.dataset.comp}, ${digest}`;
    const href = `/ui/${target.repo}@${digest}`;
    const res = await fetch(href, { headers: { Accept: "application/json", ...(await authHeaders()) } });
    if (!res.ok) return;
    const listing = (await res.json()) as
      | { listed: true; entries: { path: string; size: number; type: string }[]; truncated: boolean }
      | { listed: false; reason: string };
    if (!listing.listed) {
      const li = document.createElement("li");
      li.textContent = listing.reason;
      files.replaceChildren(li);
      return;
    }
    const items = listing.entries.slice(0, FILES_SHOWN).map((e) => {
      const li = document.createElement("li");
      li.dataset.type = e.type;
      const code = document.createElement("code");
      code.textContent = e.path;
      li.append(code, e.type === "file" ? ` ${formatBytes(e.size)}` : ` ${e.type}`);
      return li;
    });
    const more = document.createElement("li");
    const link = document.createElement("a");
    link.href = href;
    link.textContent = listing.truncated || listing.entries.length > FILES_SHOWN ? "All files…" : "Open as a page";
    more.append(link);
    files.replaceChildren(...items, more);
  }

  // Pointer: drag a rectangle, shift-drag to add one. elementFromPoint follows a touch too.
  root.addEventListener("pointerdown", (e) => {
    const p = posOf(e.target as Element);
    if (!p || e.button !== 0) return;
    e.preventDefault();
    drag = { anchor: p, base: e.shiftKey ? rects : [] };
    rects = [...drag.base, rect(p, p)];
    setCursor(p);
    render();
  });
  root.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const p = posOf(document.elementFromPoint(e.clientX, e.clientY));
    if (!p) return;
    const next = [...drag.base, rect(drag.anchor, p)];
    if (JSON.stringify(next) === JSON.stringify(rects)) return;
    rects = next;
    setCursor(p);
    render();
  });
  const endDrag = (): void => {
    if (!drag) return;
    const single = sameRect(rects.at(-1), rect(drag.anchor, drag.anchor));
    const anchor = drag.anchor;
    drag = undefined;
    if (single) void showCell(anchor);
  };
  document.addEventListener("pointerup", endDrag);
  document.addEventListener("pointercancel", endDrag);

  // Keyboard: arrows move, Enter starts a rectangle (Shift+Enter adds one), Shift+arrows grow it.
  for (const t of root.querySelectorAll<HTMLTableElement>("table.field")) {
    t.addEventListener("keydown", (e) => {
      const [r0, c0, r1, c1] = bounds();
      const moves: Record<string, Pos> = {
        ArrowUp: [-1, 0],
        ArrowDown: [1, 0],
        ArrowLeft: [0, -1],
        ArrowRight: [0, 1],
      };
      const move = moves[e.key];
      if (move) {
        e.preventDefault();
        // Shift+arrows grow the rectangle begun with Enter, or one begun at the cursor.
        if (e.shiftKey && !keyAnchor) {
          keyAnchor = [...cursor];
          rects = [...rects, rect(cursor, cursor)];
        }
        setCursor([within(cursor[0] + move[0], r0, r1), within(cursor[1] + move[1], c0, c1)]);
        if (e.shiftKey && keyAnchor) {
          rects = [...rects.slice(0, -1), rect(keyAnchor, cursor)];
          render();
        }
      } else if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        keyAnchor = [...cursor];
        rects = e.shiftKey ? [...rects, rect(cursor, cursor)] : [rect(cursor, cursor)];
        render();
        void showCell(cursor);
      } else if (e.key === "Escape") {
        rects = [];
        keyAnchor = undefined;
        render();
      }
    });
    t.addEventListener("focus", () => {
      const [r0, c0, r1, c1] = bounds();
      setCursor([within(cursor[0], r0, r1), within(cursor[1], c0, c1)]);
    });
  }

  for (const b of root.querySelectorAll<HTMLButtonElement>("#partitions button[data-partition]")) {
    b.addEventListener("click", () => {
      rects = initialRects(b.dataset.partition ?? "", partitions);
      render();
    });
  }
  document.querySelector("#clear-selection")?.addEventListener("click", () => {
    rects = [];
    render();
  });

  for (const a of root.querySelectorAll<HTMLAnchorElement>("#platforms a[data-platform]")) {
    a.addEventListener("click", (e) => {
      const wanted = a.dataset.platform ?? "";
      const section = root.querySelector<HTMLElement>(`section.platform-field[data-platform="${CSS.escape(wanted)}"]`);
      if (!section) return;
      e.preventDefault();
      platform = wanted;
      for (const s of root.querySelectorAll<HTMLElement>("section.platform-field")) s.hidden = s !== section;
      for (const other of root.querySelectorAll("#platforms a")) other.removeAttribute("aria-current");
      a.setAttribute("aria-current", "true");
      render();
    });
  }

  for (const b of root.querySelectorAll<HTMLButtonElement>("button[data-zoom]")) {
    b.addEventListener("click", () => {
      for (const t of root.querySelectorAll<HTMLElement>("table.field")) {
        const now = Number(/zoom-(\d)/.exec(t.className)?.[1] ?? 2);
        const next = clamp(now + Number(b.dataset.zoom), ZOOM_LEVELS);
        t.classList.replace(`zoom-${now}`, `zoom-${next}`);
      }
    });
  }

  document.querySelector("#sel-commands")?.addEventListener("click", (e) => {
    const button = (e.target as Element).closest<HTMLButtonElement>("button.copy");
    const text = button?.parentElement?.querySelector("code")?.textContent;
    if (!button || !text) return;
    navigator.clipboard.writeText(text).then(
      () => (button.textContent = "Copied"),
      () => {
        // No clipboard (an insecure origin): select the text so that the user can copy it.
        const range = document.createRange();
        range.selectNodeContents(button.parentElement!.querySelector("code")!);
        getSelection()?.removeAllRanges();
        getSelection()?.addRange(range);
        button.textContent = "Selected";
      },
    );
  });

  render();
}

function initialRects(label: string | null, partitions: Record<string, string>): Rect[] {
  if (!label) return [];
  try {
    return parseLabel(label, partitions);
  } catch {
    return [];
  }
}

function rect(a: Pos, b: Pos): Rect {
  return { x1: Math.min(a[0], b[0]), y1: Math.min(a[1], b[1]), x2: Math.max(a[0], b[0]), y2: Math.max(a[1], b[1]) };
}

function sameRect(a: Rect | undefined, b: Rect): boolean {
  return a !== undefined && a.x1 === b.x1 && a.y1 === b.y1 && a.x2 === b.x2 && a.y2 === b.y2;
}

function clamp(n: number, size: number): number {
  return within(n, 0, size - 1);
}

function within(n: number, low: number, high: number): number {
  return Math.max(low, Math.min(high, n));
}
