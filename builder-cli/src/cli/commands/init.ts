/** `init [DIR] [--stages N] [--rows-by GLOB] [--force]`: a 2dfs.json for a model directory. */
import { stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { planField, type FieldPlan } from "../../model/field-plan.ts";
import { renderFieldPlan } from "../../model/render.ts";
import { scanModel } from "../../model/scan.ts";
import { InputError } from "../../spec/errors.ts";
import { createOutput } from "../output.ts";

export interface InitFlags {
  stages?: number;
  rowsBy?: string;
  dst?: string;
  force?: boolean;
  json?: boolean;
}

/** What `init --json` prints: the plan, and where its 2dfs.json was written. */
export type InitResult = FieldPlan & { file: string };

export async function initCommand(dirArg: string | undefined, flags: InitFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const shownAs = dirArg ?? ".";
  const dir = path.resolve(shownAs);
  const file = path.join(dir, "2dfs.json");
  const shownFile = path.join(shownAs, "2dfs.json");
  if (flags.stages !== undefined && flags.stages < 1) {
    throw new InputError(`--stages must be 1 or more, got ${flags.stages}`);
  }
  const exists = await stat(file).then(
    () => true,
    () => false,
  );
  if (!flags.force && exists) {
    throw new InputError(`${shownFile} already exists; --force replaces it`);
  }
  const model = await scanModel(dir, { shownAs, ...(flags.rowsBy ? { rowsBy: flags.rowsBy } : {}) });
  const plan = planField(model, {
    ...(flags.stages !== undefined ? { stages: flags.stages } : {}),
    ...(flags.dst ? { dst: flags.dst } : {}),
  });
  await writeFile(file, `${JSON.stringify(plan.spec, null, 2)}\n`, flags.force ? {} : { flag: "wx" });
  out.result<InitResult>({ file, ...plan }, () => {
    for (const line of renderFieldPlan(plan)) out.line(line);
    out.line("");
    const f = shownAs === "." ? "" : `-f ${shownFile} `;
    out.line(`wrote ${shownFile}; build and push it with: 2dfs-push build ${f}scratch REGISTRY/REPOSITORY:TAG --push`);
  });
}
