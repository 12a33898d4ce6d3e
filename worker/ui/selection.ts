/**
 * What a selection of cells means for a device: its semantic tag, the bytes it pulls, what an
 * update from another tag costs it, and the commands that pull it. Pure, so that the page
 * renders a shared address (`?sel=`) on the server and the client script recomputes the same
 * figures as the selection changes.
 */
import {
  canonicalSelection,
  MAX_RECTS,
  normalizeRects,
  parseLabel,
  selects,
  type Rect,
} from "../../core/tdfs/label.ts";

export interface BlobRef {
  digest: string;
  size: number;
}

/** One allotment as the grid shows it. */
export interface CellInfo extends BlobRef {
  row: number;
  col: number;
  compression: string;
}

/** One platform's field. `previous` is the compared tag's field for the same platform. */
export interface PlatformField {
  platform: string;
  base: BlobRef[];
  cells: CellInfo[];
  previous?: { base: string[]; cells: Map<string, string> };
}

/** A PlatformField as the page hands it to the client script: compact JSON. */
export interface FieldData {
  base: [digest: string, size: number][];
  cells: [row: number, col: number, digest: string, size: number][];
  previous?: { base: string[]; cells: [row: number, col: number, digest: string][] };
}

/** Where the image is pulled from, as the commands spell it. */
export interface PullTarget {
  host: string;
  plainHttp: boolean;
  repo: string;
  tag: string;
  /** Multi-platform images get `--platform` in every command, for the platform on screen. */
  multiPlatform: boolean;
  /** The signed-in user, when pulling this repository takes credentials: commands that can ask for a password name them. */
  user?: string;
}

export interface SelectionSummary {
  /** The label after `--`: a named partition's name when it selects the same cells, else rectangles. */
  label: string;
  /** `<host>/<repo>:<tag>--<label>`. */
  reference: string;
  /** Selected allotments of this platform. */
  allotments: number;
  /** Base layers plus selected allotments, each distinct blob once. */
  bytes: number;
  /** Bytes of layers the device lacks when it holds the compared tag's partition of the same cells. */
  updateBytes?: number;
  /** Why the selection cannot be pulled, if it cannot. */
  problem?: string;
  commands: { tool: string; text: string }[];
}

const TAG_MAX = 128;
/**
 * `os/arch[/variant]` as runtimes spell them. Platform names come from the image, so one that
 * could break out of a command line is never put into one.
 */
const PLATFORM_RE = /^[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)?$/i;

export const cellKey = (row: number, col: number): string => `${row}.${col}`;

/** The label for `rects`: the name of a partition that selects the same cells, else the canonical rectangles. */
export function labelOf(rects: readonly Rect[], partitions: Readonly<Record<string, string>>): string {
  const canonical = canonicalSelection(rects);
  for (const [name, value] of Object.entries(partitions)) {
    try {
      if (canonicalSelection(parseLabel(value)) === canonical) return name;
    } catch {
      // A partition whose value is malformed matches nothing.
    }
  }
  return canonical;
}

export function summarize(
  field: PlatformField,
  rects: readonly Rect[],
  partitions: Readonly<Record<string, string>>,
  target: PullTarget,
): SelectionSummary {
  const label = labelOf(rects, partitions);
  const reference = `${target.host}/${target.repo}:${target.tag}--${label}`;
  const selected = field.cells.filter((c) => selects(rects, c.row, c.col));
  const layers = new Map<string, number>();
  for (const b of [...field.base, ...selected]) layers.set(b.digest, b.size);
  const bytes = sum(layers.values());
  const summary: SelectionSummary = { label, reference, allotments: selected.length, bytes, commands: [] };
  if (field.previous) {
    // The device holds the old tag's partition of the same cells: its base and its selected allotments.
    const held = new Set(field.previous.base);
    for (const [key, old] of field.previous.cells) {
      const [row, col] = key.split(".").map(Number) as [number, number];
      if (selects(rects, row, col)) held.add(old);
    }
    summary.updateBytes = sum([...layers].filter(([d]) => !held.has(d)).map(([, size]) => size));
  }
  const problem =
    problemOf(rects, selected.length, `${target.tag}--${label}`) ??
    (target.multiPlatform && !PLATFORM_RE.test(field.platform)
      ? "This platform's name has characters a shell would misread: no command is offered."
      : undefined);
  if (problem === undefined) summary.commands = pullCommands(target, reference, field.platform, label);
  else summary.problem = problem;
  return summary;
}

function problemOf(rects: readonly Rect[], allotments: number, tag: string): string | undefined {
  if (rects.length === 0) return "Select cells: drag over the grid, shift-drag to add a rectangle.";
  if (normalizeRects(rects).length > MAX_RECTS) return `A tag holds at most ${MAX_RECTS} rectangles: select fewer.`;
  if (tag.length > TAG_MAX)
    return `The tag would be ${tag.length} characters, more than ${TAG_MAX}: select fewer rectangles.`;
  if (allotments === 0) return "The selection holds no allotment of this platform: the registry would answer 404.";
  return undefined;
}

/**
 * The commands a user copies. Every part follows a grammar that needs no quoting: names, tags and
 * labels the registry's, the platform PLATFORM_RE, the host a URL's.
 */
export function pullCommands(
  target: PullTarget,
  reference: string,
  platform: string,
  label: string,
): { tool: string; text: string }[] {
  const plat = target.multiPlatform ? ` --platform ${platform}` : "";
  const [os, arch, variant] = platform.split("/");
  const skopeoPlatform = target.multiPlatform
    ? ` --override-os ${os} --override-arch ${arch}${variant ? ` --override-variant ${variant}` : ""}`
    : "";
  const dir = `./${target.repo.split("/").at(-1)}-${label}`;
  const insecure = target.plainHttp;
  // ctr, podman and skopeo ask for the password of a user named without one; docker and
  // 2dfs-push use what `docker login` stored.
  const user = target.user;
  return [
    {
      tool: "ctr",
      text: `ctr image pull${insecure ? " --plain-http" : ""}${user ? ` --user ${user}` : ""}${plat} ${reference}`,
    },
    { tool: "docker", text: `docker pull${plat} ${reference}` },
    {
      tool: "podman",
      text: `podman pull${insecure ? " --tls-verify=false" : ""}${user ? ` --creds ${user}` : ""}${plat} ${reference}`,
    },
    {
      tool: "skopeo",
      text: `skopeo copy${insecure ? " --src-tls-verify=false" : ""}${user ? ` --src-creds ${user}` : ""}${skopeoPlatform} docker://${reference} oci:${dir}:${target.tag}`,
    },
    {
      tool: "2dfs-push",
      text: `npx 2dfs-push export${insecure ? " --plain-http" : ""}${plat} ${reference} ${dir}`,
    },
  ];
}

function sum(values: Iterable<number>): number {
  let n = 0;
  for (const v of values) n += v;
  return n;
}
