/**
 * The header of a safetensors file, read without touching its tensors: an 8-byte little-endian
 * length N, then N bytes of JSON, `{name: {dtype, shape, data_offsets: [begin, end]}, ...,
 * "__metadata__": {...}}`, then the tensor data, where each offset pair is relative to the first
 * byte after the header (https://huggingface.co/docs/safetensors, "Format"). Reading a header
 * costs two small reads whatever the file's size, which is what lets `init` plan a field for a
 * model of hundreds of gigabytes in a fraction of a second.
 *
 * A file that is not what it claims (a Git LFS pointer left by a clone without `git lfs pull`, a
 * download cut short) is an InputError that names the file and says what is wrong with it.
 */
import { open, type FileHandle } from "node:fs/promises";
import { InputError } from "../spec/errors.ts";

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Offsets in the data section (after the header), begin inclusive, end exclusive. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** The file's size on disk. */
  fileSize: number;
  /** Length of the JSON header (the 8 bytes before it not included). */
  headerLength: number;
  /** In the order of their data. */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

/** The format's own limit: a longer header is refused by every reader (and is no header). */
export const MAX_HEADER_BYTES = 100_000_000;
const LENGTH_BYTES = 8;
const LFS_POINTER = "version https://git-lfs";

/** Reads up to `n` bytes from the start of a file (fewer if it is shorter). */
export async function readStart(fh: FileHandle, n: number): Promise<Buffer> {
  const head = Buffer.alloc(n);
  const { bytesRead } = await fh.read(head, 0, n, 0);
  return head.subarray(0, bytesRead);
}

/**
 * What is wrong with a weight file that starts like a Git LFS pointer: a clone without
 * `git lfs pull` leaves these small text files where the weights should be.
 */
export function lfsPointerProblem(head: Buffer): string | undefined {
  return head.subarray(0, LFS_POINTER.length).toString("latin1") === LFS_POINTER
    ? "is a Git LFS pointer, not the weights: fetch them with `git lfs pull` (or huggingface-cli download)"
    : undefined;
}

export class SafetensorsError extends InputError {
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "SafetensorsError";
  }
}

/** Reads and checks the header of `file`; `shownAs` is how messages name it. */
export async function readSafetensorsHeader(file: string, shownAs = file): Promise<SafetensorsHeader> {
  const fail = (problem: string): never => {
    throw new SafetensorsError(shownAs, problem);
  };
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    return fail(`cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    const fileSize = (await fh.stat()).size;
    const head = await readStart(fh, LFS_POINTER.length);
    const lfs = lfsPointerProblem(head);
    if (lfs) fail(lfs);
    if (fileSize < LENGTH_BYTES) {
      fail(`is truncated: ${fileSize} bytes, too short for the 8-byte header length of a safetensors file`);
    }
    const length = head.length >= LENGTH_BYTES ? head.readBigUInt64LE(0) : 0n;
    if (length > BigInt(MAX_HEADER_BYTES)) {
      fail(`is not a safetensors file: its header length ${length} is over the format's limit of 100 MB`);
    }
    const headerLength = Number(length);
    if (LENGTH_BYTES + headerLength > fileSize) {
      fail(
        `is truncated: its header says ${headerLength} bytes of JSON, but the file has ${fileSize - LENGTH_BYTES} after the length`,
      );
    }
    const json = Buffer.alloc(headerLength);
    await fh.read(json, 0, headerLength, LENGTH_BYTES);
    const dataBytes = fileSize - LENGTH_BYTES - headerLength;
    return { fileSize, headerLength, ...parseHeader(json, dataBytes, fail) };
  } finally {
    await fh.close();
  }
}

function parseHeader(
  json: Buffer,
  dataBytes: number,
  fail: (problem: string) => never,
): Pick<SafetensorsHeader, "tensors" | "metadata"> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString("utf8"));
  } catch (e) {
    fail(`is not a safetensors file: its header is not JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    fail("is not a safetensors file: its header is not a JSON object");
  }
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => typeof v === "string"));
      continue;
    }
    const t = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    const offsets = t?.data_offsets;
    const shape = t?.shape;
    if (
      typeof t?.dtype !== "string" ||
      !Array.isArray(shape) ||
      !shape.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(`tensor "${name}" is not described as {dtype, shape, data_offsets: [begin, end]}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataBytes) {
      fail(
        `is truncated: tensor "${name}" ends at byte ${end} of the data, but the file holds ${dataBytes} bytes of data`,
      );
    }
    tensors.push({ name, dtype: t!.dtype as string, shape: shape as number[], begin, end });
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  return { tensors, metadata };
}
