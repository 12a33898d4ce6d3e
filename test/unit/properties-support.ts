/**
 * The one home for how property tests run: every property of every properties-*.test.ts file is
 * checked with the same seed, a fixed default so that CI is reproducible, overridable to explore:
 *
 *   PROPERTY_SEED=123 PROPERTY_RUNS=50000 npm run test:unit -- properties
 *
 * PROPERTY_RUNS replaces every property's own count (a quick `PROPERTY_RUNS=10` smoke run, or a
 * long soak). On a failure fc.assert's message carries the seed, the path of the shrunk case and
 * the counterexample; add the path as PROPERTY_PATH to replay that one case at once.
 */
import fc from "fast-check";
import { afterAll, it } from "vitest";

/** The default seed; any fixed number would do, this one is easy to spot in a log. */
const DEFAULT_SEED = 20_192;

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

export const PROPERTY_SEED = envInt("PROPERTY_SEED") ?? DEFAULT_SEED;
const RUNS_OVERRIDE = envInt("PROPERTY_RUNS");
const REPLAY_PATH = process.env.PROPERTY_PATH || undefined;

/**
 * Declares the properties of one test file. `property(name, prop, runs)` is an `it` that asserts
 * `prop` `runs` times (or PROPERTY_RUNS); when the file is done it logs one line of runs per
 * property, which is what the issue quotes.
 */
export function propertySuite(file: string): {
  property: <Ts>(name: string, prop: fc.IRawProperty<Ts>, runs: number) => void;
} {
  const counts: string[] = [];
  afterAll(() => {
    console.log(`[properties] ${file}: seed ${PROPERTY_SEED}; runs per property: ${counts.join(", ")}`);
  });
  return {
    property<Ts>(name: string, prop: fc.IRawProperty<Ts>, runs: number) {
      const numRuns = RUNS_OVERRIDE ?? runs;
      counts.push(`${name} = ${numRuns}`);
      it(
        `${name} (${numRuns} runs, seed ${PROPERTY_SEED})`,
        async () => {
          const params: fc.Parameters<Ts> = { seed: PROPERTY_SEED, numRuns };
          if (REPLAY_PATH) params.path = REPLAY_PATH;
          await fc.assert(prop, params);
        },
        // A soak run (PROPERTY_RUNS) may take as long as it needs; the default counts fit the suite's timeout.
        RUNS_OVERRIDE === undefined ? undefined : 3_600_000,
      );
    },
  };
}

/**
 * Runs `f` and returns what it threw, or undefined: properties then say which error types are
 * allowed (`expect(thrown(...)).toBeInstanceOf(X)`) and a stray TypeError fails with its stack.
 */
export function thrown(f: () => unknown): unknown {
  try {
    f();
    return undefined;
  } catch (e) {
    return e;
  }
}

/** Fails with the unexpected error itself, stack included, unless it is absent or one of `allowed`. */
export function expectOnly(e: unknown, ...allowed: (abstract new (...args: never[]) => Error)[]): void {
  if (e === undefined || allowed.some((type) => e instanceof type)) return;
  throw new Error(`threw ${e instanceof Error ? e.name : typeof e}, expected only ${allowed.map((t) => t.name)}`, {
    cause: e,
  });
}

/**
 * A string that is `valid` with a few edits (insert, delete, replace) drawn from `alphabet`:
 * the inputs nearest to valid ones, where parsers most often slip.
 */
export function mutated(valid: fc.Arbitrary<string>, alphabet: string): fc.Arbitrary<string> {
  const char = fc.constantFrom(...alphabet);
  const edit = fc.tuple(fc.constantFrom("insert", "delete", "replace"), fc.nat(), char);
  return fc.tuple(valid, fc.array(edit, { minLength: 1, maxLength: 4 })).map(([s, edits]) => {
    let out = s;
    for (const [kind, at, ch] of edits) {
      const i = out.length === 0 ? 0 : at % (out.length + (kind === "insert" ? 1 : 0));
      if (kind === "insert") out = out.slice(0, i) + ch + out.slice(i);
      else if (kind === "delete") out = out.slice(0, i) + out.slice(i + 1);
      else out = out.slice(0, i) + ch + out.slice(i + 1);
    }
    return out;
  });
}

/** Arbitrary text of every kind: printable ASCII, any UTF-16 (lone surrogates included) and full Unicode. */
export const anyText = (maxLength = 64): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: "binary", maxLength }),
    fc.string({ unit: fc.nat({ max: 0xffff }).map((u) => String.fromCharCode(u)), maxLength }),
  );
