/**
 * The HTTP fuzzer's request model (test/worker/http-fuzz.test.ts): requests drawn from fast-check,
 * small enough to print when one fails (a body is a recipe, built when the request is sent), and
 * the checks every answer must pass, for the run and for regression tests of what it finds.
 *
 * Repositories come in two kinds. Pre-pushed ones hold the state whose survival the run checks:
 * they are read with anything, but written only with requests that must be refused (an invalid
 * manifest, a digest that does not match, a session of another repository). Writable ones take
 * every request, valid writes included.
 */
import fc from "fast-check";
import { isDigest, sha256, type Digest } from "../../../core/oci/digest.ts";
import { ERROR_CODES } from "../../../core/oci/errors.ts";
import type { Descriptor } from "../../../core/oci/manifest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import { ORIGIN } from "./registry.ts";

export type Call = (pathOrUrl: string, init?: RequestInit) => Promise<Response>;

/** How a body is made: short to print, rebuilt byte for byte when a failing case is replayed. */
export type BodyRecipe =
  | { kind: "none" }
  | { kind: "text"; text: string }
  | { kind: "bytes"; bytes: number[] }
  /** `size` bytes of a fixed pseudo-random sequence started at `seed`. */
  | { kind: "noise"; size: number; seed: number }
  /** A manifest whose annotations nest `depth` objects deep. */
  | { kind: "deep"; depth: number; around: string }
  /** `prefix`, then `size` spaces, then `suffix`: valid JSON as large as asked. */
  | { kind: "padded"; prefix: string; size: number; suffix: string };

export interface FuzzRequest {
  method: string;
  /** Path and query. `@BODY_DIGEST@` stands for the sha256 of the body as sent. */
  path: string;
  headers: Record<string, string>;
  body: BodyRecipe;
  /** Sent as a stream, without Content-Length (Transfer-Encoding: chunked). */
  chunked: boolean;
}

export const BODY_DIGEST = "@BODY_DIGEST@";

/**
 * The admin of the auth phase. Sign-ins are rate limited per user name, and the fuzzer's wrong
 * passwords lock its user out for a while: a name of its own keeps that from other test files.
 */
export const FUZZ_ADMIN = "fuzz-admin";
export const FUZZ_ADMIN_PASSWORD = "fuzz-admin-pw";

/** What the fuzzer knows of a repository it set up. */
export interface RepoFacts {
  name: string;
  /** Plain tags that resolve. */
  tags: string[];
  /** Semantic tags that resolve to a partition. */
  semantic: string[];
  manifests: Descriptor[];
  /** A pushed image manifest's config and layers (a 2DFS field last), to build valid manifests from. */
  config: Descriptor;
  layers: Descriptor[];
  /** Every blob linked in the repository. */
  blobs: Descriptor[];
  /** Upload sessions open in it. */
  uploads: string[];
  /** Blobs that a manifest may name as its 2DFS field but that are no valid field. */
  junkFields: Descriptor[];
}

export interface FuzzWorld {
  pre: RepoFacts[];
  writable: RepoFacts[];
}

// ---- bodies ------------------------------------------------------------------------------------

export function bodyBytes(recipe: BodyRecipe): Uint8Array<ArrayBuffer> | undefined {
  const enc = (s: string) => new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;
  switch (recipe.kind) {
    case "none":
      return undefined;
    case "text":
      return enc(recipe.text);
    case "bytes":
      return Uint8Array.from(recipe.bytes);
    case "noise": {
      const out = new Uint8Array(recipe.size);
      let x = recipe.seed | 1;
      for (let i = 0; i < out.length; i++) {
        // xorshift32: cheap, and the same bytes on every replay of a seed.
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        out[i] = x & 0xff;
      }
      return out;
    }
    case "deep":
      return enc(recipe.around.replace("@DEEP@", `${'{"a":'.repeat(recipe.depth)}1${"}".repeat(recipe.depth)}`));
    case "padded":
      return enc(`${recipe.prefix}${" ".repeat(recipe.size)}${recipe.suffix}`);
  }
}

function streamOfBytes(bytes: Uint8Array): ReadableStream<Uint8Array> {
  const CHUNK = 16 * 1024;
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (at >= bytes.byteLength) return ctl.close();
      ctl.enqueue(bytes.slice(at, at + CHUNK));
      at += CHUNK;
    },
  });
}

/**
 * Sends the request; "unsendable" when the fetch API itself refuses to build it (a header value
 * outside Latin-1, a body on GET), which no client could send either.
 */
export async function send(req: FuzzRequest, via: Call): Promise<Response | "unsendable"> {
  const bytes = bodyBytes(req.body);
  const path =
    bytes && req.path.includes(BODY_DIGEST) ? req.path.replaceAll(BODY_DIGEST, await sha256(bytes)) : req.path;
  const withBody = bytes !== undefined && req.method !== "GET" && req.method !== "HEAD";
  let request: Request;
  try {
    request = new Request(new URL(path, ORIGIN), {
      method: req.method,
      headers: req.headers,
      // A redirect is an answer to check, not to follow.
      redirect: "manual",
      ...(withBody ? { body: req.chunked ? streamOfBytes(bytes) : bytes } : {}),
    });
  } catch (e) {
    if (e instanceof TypeError) return "unsendable";
    throw e;
  }
  return via(request.url, request);
}

// ---- what every answer must be -----------------------------------------------------------------

/**
 * Promise rejections nobody handled inside the Worker: the test isolate runs the Worker, so they
 * reach this global. workerd only logs them and the client sees a fine answer, so they are
 * watched for here. `take` answers (and forgets) those seen since the last call.
 */
export function watchUnhandled(): { take(): Promise<string[]>; stop(): void } {
  const seen: string[] = [];
  const record = (e: PromiseRejectionEvent): void => void seen.push(String(e.reason));
  addEventListener("unhandledrejection", record);
  return {
    async take() {
      // The isolate reports a rejection once the task that left it has run to its end.
      await new Promise((resolve) => setTimeout(resolve, 0));
      return seen.splice(0);
    },
    stop: () => removeEventListener("unhandledrejection", record),
  };
}

const CODES = new Set(Object.keys(ERROR_CODES));

/**
 * Everything wrong with an answer, as sentences: never a 5xx; HEAD without a body; on /v2/ a 4xx
 * with a body is OCI error JSON whose codes are in the registry's table, the first matching the
 * status; a 200 manifest or whole blob has the digest it is named by. Reads the body.
 */
export async function answerProblems(req: FuzzRequest, res: Response): Promise<string[]> {
  const problems: string[] = [];
  const bytes = new Uint8Array(await res.arrayBuffer());
  const text = () => new TextDecoder().decode(bytes.slice(0, 500));
  if (res.status < 200 || res.status > 499) problems.push(`status ${res.status}: ${text()}`);
  if (req.method === "HEAD" && bytes.byteLength > 0) problems.push(`HEAD answered a body of ${bytes.byteLength} bytes`);
  const onV2 = new URL(req.path, ORIGIN).pathname.startsWith("/v2/");
  if (onV2 && res.status >= 400 && res.status <= 499 && bytes.byteLength > 0) {
    problems.push(...ociErrorProblems(res, bytes));
  }
  if (onV2 && res.status === 200 && req.method === "GET") problems.push(...(await digestProblems(req, res, bytes)));
  return problems;
}

function ociErrorProblems(res: Response, bytes: Uint8Array): string[] {
  const text = new TextDecoder().decode(bytes);
  const problems: string[] = [];
  if (res.headers.get("Content-Type") !== "application/json") {
    problems.push(`${res.status} with Content-Type ${res.headers.get("Content-Type")}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return [...problems, `${res.status} body is not JSON: ${text.slice(0, 200)}`];
  }
  const errors = (body as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || errors.length === 0) return [...problems, `${res.status} body has no errors: ${text}`];
  for (const e of errors as { code?: unknown; message?: unknown }[]) {
    if (typeof e?.code !== "string" || !CODES.has(e.code)) problems.push(`unknown error code in ${text.slice(0, 200)}`);
    if (typeof e?.message !== "string") problems.push(`error without a message: ${text.slice(0, 200)}`);
  }
  const first = (errors[0] as { code?: string }).code;
  const expected = first && CODES.has(first) ? ERROR_CODES[first as keyof typeof ERROR_CODES].status : undefined;
  if (expected !== undefined && expected !== res.status) problems.push(`${first} answered with ${res.status}`);
  return problems;
}

/** A manifest is served with the digest of its bytes; a whole blob is the digest it is named by. */
async function digestProblems(req: FuzzRequest, res: Response, bytes: Uint8Array): Promise<string[]> {
  const m = /^\/v2\/.+\/(manifests|blobs)\/([^/?]+)$/.exec(new URL(req.path, ORIGIN).pathname);
  if (!m) return [];
  const named = res.headers.get("Docker-Content-Digest");
  if (m[1] === "blobs" && (m[2] === "uploads" || !isDigest(m[2]!))) return [];
  const wanted = m[1] === "manifests" ? named : m[2]!;
  if (!wanted || !isDigest(wanted) || !wanted.startsWith("sha256:")) return [];
  const actual = await sha256(bytes);
  return actual === wanted ? [] : [`GET answered bytes of ${actual}, named ${wanted}`];
}

// ---- drawing requests --------------------------------------------------------------------------

/** Imperative draws from fast-check's generator: every choice shrinks towards the first option, every chance towards no. */
class Draw {
  private readonly g: fc.GeneratorValue;
  constructor(g: fc.GeneratorValue) {
    this.g = g;
  }
  int(max: number): number {
    return this.g(fc.nat, { max });
  }
  one<T>(items: readonly T[]): T {
    return items[this.int(items.length - 1)]!;
  }
  /** Shrinks towards false: a shrunk case keeps only the headers and options it needs. */
  chance(percent: number): boolean {
    return this.int(99) >= 100 - percent;
  }
  hex(bytes: number): string {
    const raw = this.g(fc.uint8Array, { minLength: bytes, maxLength: bytes });
    return [...raw].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  text(maxLength: number): string {
    return this.g(fc.string, { maxLength, unit: "grapheme" });
  }
  ascii(maxLength: number): string {
    return this.g(fc.string, { maxLength, unit: "grapheme-ascii" });
  }
}

const SAFE_METHODS = ["GET", "HEAD"];
const WRITE_METHODS = ["PUT", "POST", "PATCH", "DELETE"];
const ODD_METHODS = [
  "OPTIONS",
  "PROPFIND",
  "PURGE",
  "QUERY",
  "MKCOL",
  "REPORT",
  "get",
  "head",
  "patch",
  "delete",
  "put",
];
/** Routes by the percentile drawRequest draws them at, with the methods each takes. */
const NATURAL_METHODS: [upTo: number, methods: string[]][] = [
  [30, ["GET", "HEAD", "PUT", "DELETE"]],
  [45, ["GET", "HEAD", "DELETE"]],
  [60, ["POST"]],
  [75, ["GET", "PATCH", "PUT", "DELETE"]],
  [91, ["GET"]],
  [93, ["GET", "HEAD"]],
  [97, ["GET", "HEAD", "POST"]],
  [100, ["GET", "POST"]],
];

/** Whether a method may change state: anything but GET and HEAD, in any case. */
export function mayWrite(method: string): boolean {
  return !SAFE_METHODS.includes(method.toUpperCase()) && method.toUpperCase() !== "OPTIONS";
}

const INVALID_NAMES = [
  "Fuzz/App",
  "fuzz-pre//app",
  "a/..b",
  "a..",
  "a%2fb",
  "fuzz-pre%2fapp",
  "fuzz-pre%2Fapp",
  "-a/b",
  "_uploads/x",
  "x/_blobs",
  "a".repeat(256),
  `${"a".repeat(200)}/${"b".repeat(100)}`,
  "r%C3%A9po",
  "répo",
  "😀/x",
  "a%20b",
  "a%00b",
  "a/./b",
  "A",
  "a__b_",
  "a___b",
  "%",
  "%zz",
  "x".repeat(20_000),
];

const DIGEST_JUNK = (hex: string): string[] => [
  `md5:${hex.slice(0, 32)}`,
  `sha384:${hex}${hex.slice(0, 32)}`,
  `sha3-256:${hex}`,
  `SHA256:${hex}`,
  `sha256:${hex.toUpperCase()}`,
  `sha256:${hex.slice(1)}`,
  `sha256:${hex}0`,
  "sha256:",
  ":",
  `:${hex}`,
  "sha256",
  `sha256:${"g".repeat(64)}`,
  `sha256%3A${hex}`,
  `sha256:${hex}%0A`,
  `sha512:${hex}`,
  `sha256:${hex}@x`,
  `sha256:${hex}:${hex}`,
  `a+b.c_d-e:${hex}`,
  `sha256:${"a".repeat(5000)}`,
];

const LABELS = [
  "0.0.1.1",
  "0.0.0.0",
  "half",
  "all",
  "0.0.0.0--1.1.1.1",
  "5.5.9.9",
  "0.0.99999.99999",
  "99999999999999999999.0.0.0",
  "0.0.4294967296.1",
  "1.1.0.0",
  "a.b.c.d",
  "0.0.0",
  "0.0.0.0.0",
  "",
  "-",
  "0.0.0.0--",
  "--0.0.0.0",
  Array(17).fill("0.0.0.0").join("--"),
  Array(16).fill("0.0.0.0").join("--"),
  "01.0.0.0",
  "1e3.0.0.0",
  "0x1.0.0.0",
  "nope",
  "constructor",
  "__proto__",
  "toString",
  "hasOwnProperty",
  "half--0.0.0.0",
  "ALL",
];

const ACCEPTS = [
  [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList].join(", "),
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  "*/*",
  "application/json",
  "text/html",
  "garbage",
  "",
  `${MediaType.OciManifest};q=0`,
  `${MediaType.OciIndex};q=0.5, ${MediaType.OciManifest};q=abc`,
  Array(300).fill(MediaType.OciManifest).join(","),
];

const RANGES = [
  "bytes=0-0",
  "bytes=0-",
  "bytes=5-2",
  "bytes=-0",
  "bytes=-1",
  "bytes=-99999999999",
  "bytes=999999999999999999999-",
  "bytes=0-99999999999999999999",
  "bytes=0-1,2-3",
  "bytes=abc",
  "items=0-1",
  "bytes=",
  "bytes=1000000-",
];

const CONTENT_RANGES = ["0-0", "0-9", "bytes 0-9/10", "bytes=0-3", "5-3", "abc", "0-99999999999999999999", "1-1", "-"];

const CONTENT_TYPES = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
  "application/json",
  "application/octet-stream",
  `${MediaType.OciManifest}; charset=utf-8`,
  "text/plain",
  "",
  "garbage/x y",
  "multipart/form-data; boundary=x",
  "application/x-www-form-urlencoded",
];

const AUTHORIZATIONS = [
  "",
  "Basic",
  "Basic !!!",
  `Basic ${btoa(`${FUZZ_ADMIN}:wrong`)}`,
  `Basic ${btoa("nobody")}`,
  `Basic ${btoa(":")}`,
  "Bearer",
  "Bearer junk",
  "Bearer a.b.c",
  `Bearer ${"x".repeat(5000)}`,
  "Digest username=x",
  "basic YTpi",
];

/**
 * One random request. Against a pre-pushed repository a method that may write is given only
 * parts that must make it fail: that state must come through the run unchanged.
 */
export function drawRequest(g: fc.GeneratorValue, world: FuzzWorld, extraAuth: readonly string[] = []): FuzzRequest {
  const d = new Draw(g);
  const route = d.int(99);
  // Mostly a method the route takes, so that requests get past the 405 to the route's own checks.
  const natural = NATURAL_METHODS.find(([upTo]) => route < upTo)![1];
  const method = d.chance(80)
    ? d.one(natural)
    : d.chance(80)
      ? d.one([...SAFE_METHODS, ...WRITE_METHODS])
      : d.one(ODD_METHODS);
  const kind = d.one(["pre", "writable", "random", "invalid"] as const);
  const repo: RepoFacts | undefined =
    kind === "pre" ? d.one(world.pre) : kind === "writable" ? d.one(world.writable) : undefined;
  const safe = kind === "pre" && mayWrite(method);
  const name = repo
    ? repo.name
    : kind === "random"
      ? `fuzz-r/${d.one(["a", "b", "x-y", "z.z", "q__r"])}${d.int(20)}`
      : d.one(INVALID_NAMES);
  const all = [...world.pre, ...world.writable];
  const other = d.one(all);
  const parts = new Parts(d, world, repo, other, safe);

  let path: string;
  let body: BodyRecipe = { kind: "none" };
  if (route < 30) {
    // A push to a pre-pushed repository fails by its body, or by a reference the body cannot have.
    const refusedByRef = safe && method.toUpperCase() === "PUT" && d.chance(30);
    const ref = refusedByRef ? parts.refusedPutRef() : safe ? parts.refToRefuse(method) : parts.reference();
    const tagged = method.toUpperCase() === "PUT" && ref.includes(":") && d.chance(30);
    path = `/v2/${name}/manifests/${ref}${tagged ? parts.tagQuery() : ""}`;
    body = parts.manifestBody(safe && !refusedByRef);
  } else if (route < 45) {
    path = `/v2/${name}/blobs/${safe ? parts.digestToRefuse() : parts.digest()}`;
    body = parts.blobBody();
  } else if (route < 60) {
    path = `/v2/${name}/blobs/uploads/${parts.uploadStartQuery(safe)}`;
    body = parts.blobBody();
  } else if (route < 75) {
    const uuid = safe ? parts.uuidToRefuse() : parts.uuid();
    path = `/v2/${name}/blobs/uploads/${uuid}${parts.uploadCloseQuery(safe)}`;
    body = parts.blobBody();
  } else if (route < 82) {
    path = `/v2/${name}/tags/list${parts.pageQuery()}`;
  } else if (route < 88) {
    path = `/v2/${name}/referrers/${parts.digest()}${d.chance(50) ? `?artifactType=${encodeURIComponent(d.one(["application/vnd.example.signature", "", d.ascii(20)]))}` : ""}`;
  } else if (route < 91) {
    path = `/v2/_catalog${parts.pageQuery()}`;
  } else if (route < 93) {
    path = d.one(["/v2/", "/v2", "/v2//", "/v2/_catalog/", "/v2/x", "/", "/favicon.ico", "/v3/", "/_edge/tag/x/y"]);
  } else if (route < 97) {
    path = parts.uiPath(name);
  } else {
    path = d.chance(80) ? `/token${parts.tokenQuery(name)}` : d.one(["/admin/gc?dryRun=1", "/admin/gc?dryRun=true"]);
    body = parts.tokenForm();
  }
  if (!body || method.toUpperCase() === "GET" || method.toUpperCase() === "HEAD") body = { kind: "none" };
  // A real collection would be a valid write to every repository, the pre-pushed ones too.
  if (path.startsWith("/admin/gc") && !path.includes("dryRun")) path += "?dryRun=1";
  return { method, path, headers: parts.headers(method, extraAuth), body, chunked: d.chance(15) };
}

/** The pieces of a request, drawn for one repository. */
class Parts {
  private readonly d: Draw;
  private readonly world: FuzzWorld;
  private readonly repo: RepoFacts | undefined;
  private readonly other: RepoFacts;
  /** The request may write to a pre-pushed repository: only parts that make it fail. */
  private readonly safe: boolean;

  constructor(d: Draw, world: FuzzWorld, repo: RepoFacts | undefined, other: RepoFacts, safe: boolean) {
    this.d = d;
    this.world = world;
    this.repo = repo;
    this.other = other;
    this.safe = safe;
  }

  private get facts(): RepoFacts {
    return this.repo ?? this.other;
  }

  randomDigest(): Digest {
    return this.d.chance(85) ? `sha256:${this.d.hex(32)}` : `sha512:${this.d.hex(64)}`;
  }

  junkDigest(): string {
    return this.d.one(DIGEST_JUNK(this.d.hex(32)));
  }

  /** Any digest: one the repository has, one another has, one nobody has, or a malformed one. */
  digest(): string {
    const f = this.facts;
    switch (this.d.int(4)) {
      case 0:
        return this.d.one([...f.blobs, ...f.manifests]).digest;
      case 1:
        return this.d.one([...this.other.blobs, ...this.other.manifests]).digest;
      case 2:
        return this.randomDigest();
      default:
        return this.junkDigest();
    }
  }

  /** A digest that names nothing in the repository, or is malformed. */
  digestToRefuse(): string {
    return this.d.chance(50) ? this.randomDigest() : this.junkDigest();
  }

  tag(): string {
    const f = this.facts;
    switch (this.d.int(6)) {
      case 0:
        return this.d.one(f.tags);
      case 1:
        return this.d.one(f.semantic.length ? f.semantic : f.tags);
      case 2:
        return `${this.d.one(f.tags)}--${this.d.one(LABELS)}`;
      case 3:
        return this.d.one([
          "t".repeat(128),
          "t".repeat(129),
          "t".repeat(5000),
          "-x",
          ".x",
          "a%20b",
          "t%C3%BC",
          "_x",
          "x_",
          "x..y",
        ]);
      case 4:
        return encodeURIComponent(this.d.text(40));
      case 5:
        return this.d.ascii(20).replace(/[/?#%]/g, "_") || "x";
      default:
        return `nx-${this.d.int(1000)}`;
    }
  }

  reference(): string {
    return this.d.chance(60) ? this.tag() : this.digest();
  }

  /**
   * A reference that a write must refuse, or that names nothing: for PUT, a tag or digest the
   * body cannot be pushed under; for DELETE, nothing stored (a semantic tag is no stored tag).
   */
  refToRefuse(method: string): string {
    const m = method.toUpperCase();
    const f = this.facts;
    if (m === "DELETE") {
      return this.d.one([
        () => `${this.d.one(f.tags)}--${this.d.one(LABELS)}`,
        () => this.d.one(f.semantic.length ? f.semantic : ["x--0.0.0.0"]),
        () => `nx-${this.d.int(1000)}`,
        () => this.digestToRefuse(),
        () => this.d.one(["t".repeat(129), "-x", "a%20b", ""]),
        // Another repository's manifest is not this one's.
        () => this.d.one(this.world.writable.flatMap((w) => w.manifests)).digest,
      ])();
    }
    // PUT and the rest: the body is always refused (manifestBody with safe), whatever the reference.
    return this.reference();
  }

  tokenQuery(name: string): string {
    const d = this.d;
    const scope = d.one([
      `repository:${name}:pull`,
      `repository:${name}:pull,push`,
      `repository:${name}:*`,
      `repository:${name}:delete,bogus`,
      "registry:catalog:*",
      "repository::pull",
      "repository:a:b:c:d",
      ":",
      "",
      d.ascii(30),
      Array(200).fill(`repository:${name}:pull`).join(" "),
    ]);
    const extra = d.one(["", "&offline_token=true", "&service=elsewhere", `&scope=${encodeURIComponent(d.ascii(10))}`]);
    return d.one(["", `?service=registry.test&scope=${encodeURIComponent(scope)}${extra}`, `?scope=${scope}`]);
  }

  /** An OAuth2 form for POST /token: the grants it knows, with right, wrong and missing parts. */
  tokenForm(): BodyRecipe {
    const d = this.d;
    const form = d.one([
      `grant_type=password&username=${FUZZ_ADMIN}&password=${FUZZ_ADMIN_PASSWORD}&scope=repository%3Afuzz-w%2Fapp%3Apull`,
      `grant_type=password&username=${FUZZ_ADMIN}&password=wrong`,
      "grant_type=password&username=&password=",
      "grant_type=password",
      `grant_type=password&username=${FUZZ_ADMIN}&password=${FUZZ_ADMIN_PASSWORD}&access_type=offline`,
      "grant_type=refresh_token&refresh_token=junk",
      `grant_type=refresh_token&refresh_token=${"a.".repeat(500)}`,
      "grant_type=client_credentials",
      "grant_type=%ZZ&username=%",
      "",
      d.ascii(50),
    ]);
    return d.one([
      (): BodyRecipe => ({ kind: "text", text: form }),
      (): BodyRecipe => ({ kind: "bytes", bytes: [0x67, 0xff, 0x3d, 0xfe] }),
      (): BodyRecipe => ({ kind: "padded", prefix: "grant_type=password&username=", size: 70_000, suffix: "x" }),
      (): BodyRecipe => ({ kind: "none" }),
    ])();
  }

  /** A reference no push can be stored under: a digest its body does not have, or no tag at all. */
  refusedPutRef(): string {
    return this.d.one([
      () => this.randomDigest(),
      // A junk digest without a colon ("sha256") is a valid tag: only those read as digests.
      () => this.d.one(DIGEST_JUNK(this.d.hex(32)).filter((j) => /:|%3A/.test(j))),
      () => this.d.one(["t".repeat(129), "-x", ".x", "a%20b", "t%C3%BC", "x%2fy"]),
    ])();
  }

  tagQuery(): string {
    const count = this.d.one([1, 2, 101]);
    const tags = Array.from({ length: count }, (_, i) =>
      this.safe ? `${"t".repeat(129)}` : `fz${i}-${this.d.int(50)}`,
    );
    if (this.safe || this.d.chance(20)) tags.push(this.d.one(["-bad", "t".repeat(129), "a b"]));
    return `?${tags.map((t) => `tag=${encodeURIComponent(t)}`).join("&")}`;
  }

  uuid(): string {
    const all = [...this.world.pre, ...this.world.writable].flatMap((r) => r.uploads);
    return this.d.one([
      () => this.d.one(this.facts.uploads.length ? this.facts.uploads : all),
      () => this.d.one(all),
      () => crypto.randomUUID(),
      () => this.d.one(["not-a-uuid", "00000000-0000-4000-8000-000000000000", "%2e%2e", "x%2fy", "a".repeat(3000)]),
      () => this.d.one(all).toUpperCase(),
      () => `${this.d.one(all)}&digest=sha256:${this.d.hex(32)}`,
    ])();
  }

  /**
   * A session a write must not reach through a pre-pushed repository: none, another repository's
   * (that it must not touch either), or a malformed one.
   */
  uuidToRefuse(): string {
    const foreign = this.world.writable.flatMap((r) => r.uploads);
    return this.d.one([
      () => crypto.randomUUID(),
      () => this.d.one(foreign),
      () => this.d.one(["not-a-uuid", "%2e%2e", "x%2fy", ""]),
    ])();
  }

  /** POST .../blobs/uploads/ with nothing, a digest, a mount... */
  uploadStartQuery(safe: boolean): string {
    const d = this.d;
    const from = d.one([
      ...this.world.pre.map((r) => r.name),
      ...this.world.writable.map((r) => r.name),
      "Bad/Name",
      "",
      "a%2fb",
    ]);
    if (safe) {
      // Nothing valid may land in a pre-pushed repository: no mount of a stored blob, and a pushed
      // body never matches its digest (a new session is a fresh key, and allowed).
      return d.one([
        "",
        `?digest=${this.digestToRefuse()}`,
        `?mount=${this.digestToRefuse()}&from=${from}`,
        `?mount=${this.junkDigest()}`,
        `?digest=${this.randomDigest()}&mount=${this.randomDigest()}`,
      ]);
    }
    const known = d.one([...this.facts.blobs, ...this.other.blobs]).digest;
    return d.one([
      "",
      `?digest=${BODY_DIGEST}`,
      `?digest=${this.digest()}`,
      `?digest=${this.d.hex(32)}`,
      `?mount=${known}&from=${from}`,
      `?mount=${known}`,
      `?mount=${this.digest()}&from=${from}`,
      `?mount=${known}&from=${from}&digest=${BODY_DIGEST}`,
    ]);
  }

  uploadCloseQuery(safe: boolean): string {
    return this.d.one([
      "",
      `?digest=${safe ? this.digestToRefuse() : BODY_DIGEST}`,
      `?digest=${this.digestToRefuse()}`,
      `?digest=${this.d.hex(32)}`,
      `?digest=${BODY_DIGEST}&digest=${this.junkDigest()}`,
    ]);
  }

  pageQuery(): string {
    const n = this.d.one(["", "0", "1", "2", "-1", "abc", "99999999999", "1e3", "10000", "10001", "%00", " 1"]);
    const last = this.d.one(["", "v1", "zzz", "0", this.d.ascii(10), "t".repeat(300), "%2f"]);
    const q = [n ? `n=${n}` : "", this.d.chance(40) ? `last=${encodeURIComponent(last)}` : ""].filter(Boolean);
    return q.length ? `?${q.join("&")}` : this.d.one(["", "?", "?n", "?last", "?n=1&n=2"]);
  }

  uiPath(name: string): string {
    const f = this.facts;
    const d = this.d;
    const query = d.one([
      "",
      "?q=fuzz",
      `?q=${"q".repeat(400)}`,
      "?last=zzz",
      "?page=99999",
      "?page=-1",
      "?page=abc",
      "?platform=linux/amd64",
      "?platform=nope",
      `?compare=${d.one(f.tags)}`,
      "?compare=t--0.0.0.0",
      "?sel=0.0.1.1",
      "?sel=garbage",
      "?sel=0.0.99999999999.1",
      `?sel=${Array(40).fill("0.0.0.0").join("--")}`,
      "?r0=99999999&c0=-5",
      "?r0=abc",
    ]);
    return d.one([
      () => `/ui/${query}`,
      () => `/ui/${name}${query}`,
      () => `/ui/${name}:${this.tag()}${query}`,
      () => `/ui/${name}@${this.digest()}${query}`,
      () => `/ui/_/${d.one(["app.js", "style.css", "nope", "signin", "../x"])}`,
      () => d.one(["/ui", "/ui//", "/ui/%", "/ui/a:b:c", "/ui/a@b@c"]),
    ])();
  }

  headers(method: string, extraAuth: readonly string[]): Record<string, string> {
    const d = this.d;
    const h: Record<string, string> = {};
    if (d.chance(50)) h.Accept = d.one(ACCEPTS);
    if (d.chance(25)) h.Range = d.one(RANGES);
    if (d.chance(mayWrite(method) ? 60 : 10)) h["Content-Type"] = d.one(CONTENT_TYPES);
    if (d.chance(20)) h["Content-Range"] = d.one(CONTENT_RANGES);
    if (d.chance(5)) h["Content-Length"] = d.one(["0", "1", "5", "-1", "abc", "99999999999", "1e3"]);
    // With auth on, valid credentials (extraAuth) are what gets a request past the gate to a route.
    if (extraAuth.length && d.chance(50)) h.Authorization = extraAuth[0]!;
    else if (d.chance(extraAuth.length ? 80 : 25)) h.Authorization = d.one([...AUTHORIZATIONS, ...extraAuth]);
    if (d.chance(10)) {
      h["If-None-Match"] = d.one([`"${this.digest()}"`, "*", "junk", `"${d.one(this.facts.manifests).digest}"`]);
    }
    if (d.chance(5)) h[d.one(["X-Junk", "Docker-Content-Digest", "OCI-Subject"])] = d.ascii(40);
    return h;
  }

  /** Blob bytes: nothing, a few bytes, noise, a stored blob's size of noise, up to a few MiB. */
  /** A pre-pushed repository's blob writes are refused by their digest or session, not their body. */
  blobBody(): BodyRecipe {
    const d = this.d;
    return d.one([
      (): BodyRecipe => ({ kind: "none" }),
      (): BodyRecipe => ({ kind: "text", text: d.ascii(30) }),
      (): BodyRecipe => ({ kind: "noise", size: d.int(4096), seed: d.int(1 << 30) }),
      (): BodyRecipe => ({ kind: "bytes", bytes: [] }),
      // What a layer's first bytes claim (gzip, zstd, a tar header) over bytes that are not one:
      // the web view lists the files of whatever a fuzzed image names as a layer.
      (): BodyRecipe => ({ kind: "bytes", bytes: [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, d.int(255), d.int(255)] }),
      (): BodyRecipe => ({ kind: "bytes", bytes: [0x28, 0xb5, 0x2f, 0xfd, d.int(255)] }),
      (): BodyRecipe => ({ kind: "padded", prefix: "file", size: 253, suffix: `ustar${"9".repeat(d.int(300))}` }),
      (): BodyRecipe => ({ kind: "noise", size: d.one([65_536, 1 << 20, 6 << 20]), seed: d.int(1 << 30) }),
    ])();
  }

  /** A manifest body; with `refused`, only bodies that no push may accept. */
  manifestBody(refused: boolean): BodyRecipe {
    const d = this.d;
    const f = this.facts;
    const missing = (): Descriptor => ({ mediaType: MediaType.OciLayerGzip, digest: this.randomDigest(), size: 10 });
    const image = (layers: unknown[] = f.layers, extra: Record<string, unknown> = {}) => ({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: f.config,
      layers,
      ...extra,
    });
    const index = (manifests: unknown[]) => ({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests });
    const json = (v: unknown): BodyRecipe => ({ kind: "text", text: JSON.stringify(v) });
    const invalid: (() => BodyRecipe)[] = [
      () => ({ kind: "none" }),
      () => json(image([...f.layers, missing()])),
      () => json(image(f.layers, { config: missing() })),
      () => json(index([{ ...missing(), mediaType: MediaType.OciManifest }])),
      () => json(index([null])),
      () => json(index([{}])),
      // A blob is no manifest: an index must list manifests.
      () => json(index([{ ...f.config, mediaType: MediaType.OciManifest }])),
      () => json(image(f.layers, { schemaVersion: d.one(["2", 1, 3, null, 2.5]) })),
      () =>
        json(
          image(f.layers, { config: d.one([[], "x", null, { ...f.config, size: -1 }, { ...f.config, digest: 5 }]) }),
        ),
      () => json(image(d.one([{}, null, [null], [1], [{ ...f.layers[0], size: 1.5 }]] as unknown[]) as unknown[])),
      () => json(image([{ ...f.layers[0], mediaType: "" }])),
      () => json(image(f.layers, { annotations: d.one([{ a: 1 }, [], "x", { a: null }]) })),
      () => json(image(f.layers, { mediaType: d.one([5, "", "application/x", MediaType.OciIndex]) })),
      () => ({ kind: "text", text: JSON.stringify(image()).replace('"size":', '"size":1e400,"x":') }),
      () => ({ kind: "text", text: JSON.stringify(image()).replace(/"size":\d+/, '"size":1e400') }),
      () => ({ kind: "text", text: JSON.stringify(image()).replace(/"size":\d+/, `"size":${2 ** 64}`) }),
      () => ({
        kind: "deep",
        depth: d.one([10_001, 100_000]),
        around: JSON.stringify(image(f.layers, { annotations: "@DEEP@" })).replace('"@DEEP@"', "@DEEP@"),
      }),
      () => ({ kind: "deep", depth: d.one([10, 10_000, 10_001]), around: `[@DEEP@]` }),
      // Duplicate keys: the last one wins in Go and in JSON.parse, and it is invalid here.
      () => ({
        kind: "text",
        text: JSON.stringify(image()).replace(/}$/, `,"layers":[${JSON.stringify(missing())}]}`),
      }),
      () => ({ kind: "text", text: JSON.stringify(image()).replace(/}$/, ',"schemaVersion":3}') }),
      () => ({ kind: "bytes", bytes: [0x7b, 0xff, 0xfe, 0x7d] }),
      () => ({ kind: "bytes", bytes: [0xc0, 0xaf] }),
      () => ({ kind: "bytes", bytes: [0xef, 0xbb, 0xbf, ...new TextEncoder().encode(JSON.stringify(image()))] }),
      () => ({ kind: "text", text: d.one(["", "null", "[]", '"x"', "1", "true", "{", "}", "{}", "1e999", '{"a":']) }),
      () => ({ kind: "padded", prefix: JSON.stringify(image()).slice(0, -1), size: 4 << 20, suffix: "}" }),
      () => json({ ...image(), schemaVersion: undefined }),
      () => json({ schemaVersion: 2, mediaType: MediaType.OciManifest, layers: f.layers }),
      () => json({ schemaVersion: 2, mediaType: MediaType.OciIndex, config: f.config, layers: f.layers }),
      () =>
        json(
          image(
            [...f.layers.slice(0, -1), this.d.one(f.junkFields.length ? f.junkFields : [missing()])].filter(Boolean),
          ),
        ),
      () => ({ kind: "noise", size: d.int(2048), seed: d.int(1 << 30) }),
    ];
    if (refused) return d.one(invalid)();
    const junkField = this.world.writable.find((w) => w.junkFields.length > 0);
    const valid: (() => BodyRecipe)[] = [
      () => json(image()),
      () => json(index(f.manifests.slice(0, 1 + d.int(f.manifests.length - 1)))),
      () => json(image(f.layers, { subject: d.one(f.manifests), artifactType: "application/vnd.example.signature" })),
      () => json(image(f.layers, { subject: missing() })),
      () => json({ ...image(), mediaType: undefined }),
      () => json(image(f.layers, { annotations: { "\u0000": "\ud800", "2dfs.partition.half": d.one(LABELS) } })),
      () => json(image([...f.layers.slice(0, -1), d.one(junkField?.junkFields ?? f.layers)])),
      () => json(image(f.layers.map((l) => ({ ...l, size: l.size + 1 })))),
      // Any blob the repository holds (fuzzed ones too, once learned) as a layer of any kind.
      () => {
        const layerType = d.one([MediaType.OciLayerGzip, MediaType.OciLayerTar, MediaType.OciLayerZstd]);
        return json(image([{ ...d.one(f.blobs), mediaType: layerType }]));
      },
      () => ({ kind: "text", text: JSON.stringify(image()).replace(/"size":\d+/, '"size":-0') }),
      () => ({
        kind: "text",
        text: JSON.stringify(image()).replace(/}$/, ',"__proto__":{"polluted":true},"constructor":{"prototype":{}}}'),
      }),
      () => ({
        kind: "deep",
        depth: d.one([10, 9_999]),
        around: JSON.stringify(image(f.layers, { x: "@DEEP@" })).replace('"@DEEP@"', "@DEEP@"),
      }),
      () => ({ kind: "bytes", bytes: [...new TextEncoder().encode(JSON.stringify(image()))] }),
    ];
    return d.chance(50) ? d.one(valid)() : d.one(invalid)();
  }
}

/**
 * What a valid write to a writable repository made, added to what the fuzzer draws from: a
 * session it opened, a blob or manifest it stored. Later requests then reach state that only
 * the run itself created (sessions in mid-upload, manifests over fuzzed blobs).
 */
export function learn(world: FuzzWorld, req: FuzzRequest, res: Response): void {
  const pathname = new URL(req.path, ORIGIN).pathname;
  const repo = world.writable.find((w) => pathname.startsWith(`/v2/${w.name}/`));
  if (!repo) return;
  const keep = <T>(list: T[], item: T) => {
    list.push(item);
    // Recent ones only: a long run should not dilute the set up state away.
    if (list.length > 24) list.splice(4, 1);
  };
  const location = res.headers.get("Location") ?? "";
  const session = /\/blobs\/uploads\/([0-9a-f-]{36})$/.exec(location);
  if (res.status === 202 && session) keep(repo.uploads, session[1]!);
  const digest = res.headers.get("Docker-Content-Digest");
  if (res.status !== 201 || !digest || !isDigest(digest)) return;
  const size = bodyBytes(req.body)?.byteLength ?? 0;
  if (pathname.includes("/manifests/")) {
    const mediaType = req.headers["Content-Type"] || MediaType.OciManifest;
    keep(repo.manifests, { mediaType, digest, size });
  } else if (!repo.blobs.some((b) => b.digest === digest)) {
    keep(repo.blobs, { mediaType: "application/octet-stream", digest, size });
  }
}

/** The arbitrary of requests over a world set up before. */
export function requests(world: FuzzWorld, extraAuth: readonly string[] = []): fc.Arbitrary<FuzzRequest> {
  return fc.gen().map((g) => drawRequest(g, world, extraAuth));
}
