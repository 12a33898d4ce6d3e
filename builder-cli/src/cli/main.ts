/**
 * The command line: argument parsing only; every command's work lives in ./commands, and only the
 * module of the command that runs is loaded, so `--version` and `--help` start fast.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import pkg from "../../package.json" with { type: "json" };
import { EXIT_OK, EXIT_USAGE, runCommand } from "./run.ts";

const commands = {
  init: () => import("./commands/init.ts"),
  build: () => import("./commands/build.ts"),
  push: () => import("./commands/push.ts"),
  export: () => import("./commands/export.ts"),
  copy: () => import("./commands/copy.ts"),
  inspect: () => import("./commands/inspect.ts"),
  store: () => import("./commands/store.ts"),
  key: () => import("./commands/key.ts"),
  sign: () => import("./commands/sign.ts"),
  verify: () => import("./commands/verify.ts"),
};

const collect = (value: string, previous: string[]): string[] => [...previous, value];
const integer = (value: string): number => {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError("not an integer");
  return Number(value);
};

const program = new Command("2dfs-push")
  .description("Build 2DFS images from a 2dfs.json and push only what the registry lacks")
  .version(pkg.version)
  .exitOverride()
  .showHelpAfterError("(run with --help for usage)");

/** Options of every command that talks to a registry. */
function registryOptions(cmd: Command): Command {
  return cmd
    .option("--plain-http", "use http even for registries other than localhost and 127.0.0.1")
    .option("--username <name>", "registry user name")
    .option("--password-stdin", "read the registry password from stdin");
}

/** Options of the commands that sign what they push. */
function signingOptions(cmd: Command): Command {
  return cmd
    .option("--sign <KEY>", "sign the image and its partitions with this cosign.key")
    .option(
      "--sign-partition <LABEL>",
      "also sign this partition, e.g. 0.0.1.3 (repeatable; needs --sign)",
      collect,
      [],
    )
    .option("--passphrase-stdin", "read the key's passphrase from stdin (else $TDFS_KEY_PASSPHRASE or a prompt)");
}

program
  .command("init")
  .description("write a 2dfs.json for a model directory (Hugging Face layouts, GGUF, ONNX) and show its field")
  .argument("[DIR]", "the model directory", ".")
  .option("--stages <N>", "add partitions stage0..stage{N-1} for pipeline-parallel serving", integer)
  .option("--rows-by <GLOB>", "make a row of each folder or file matching GLOB (default: the variant folders)")
  .option("--dst <PATH>", "where the model's files land in the image", "/model")
  .option("--force", "replace an existing 2dfs.json")
  .option("--json", "print the plan as JSON")
  .addHelpText(
    "after",
    `
Shards become columns in shard order; configs and tokenizer files one allotment at (0,0) that every
partition includes; the model at the top of DIR is row 0 (partition "main"), each variant folder
(int8/, onnx/) or --rows-by match a row of its own, named after it. Safetensors are read by their
headers only. --stages splits the transformer layers into N ranges of about equal bytes (the
embeddings go to the first stage, the final norm and head to the last); each stage selects only
the shards holding its tensors.`,
  )
  .action((dir: string, flags) => runCommand(async () => (await commands.init()).initCommand(dir, flags)));

signingOptions(
  registryOptions(
    program
      .command("build")
      .description("build a 2DFS image from 2dfs.json on top of BASE and store it as TARGET")
      .argument("<BASE>", "scratch, oci:DIR[:tag], or an image in a registry")
      .argument("<TARGET>", "name of the image to create, e.g. localhost:5000/models/llm:v1")
      .option("-f, --file <path>", "the 2dfs.json to build", "2dfs.json")
      .option("--push", "push TARGET after building it")
      .option("--platform <os/arch[/variant]>", "keep only this platform of BASE (repeatable)", collect, [])
      .addOption(
        new Option("--compression <kind>", "allotment compression")
          .choices(["auto", "gzip", "zstd", "none"])
          .default("auto"),
      )
      .option("--level <n>", "compression level (gzip 0-9, zstd 1-22)", integer)
      .option("--store <dir>", "local image store (default $XDG_DATA_HOME/2dfs-push/images)")
      .option("--json", "print the result as JSON"),
  ),
).action((base: string, target: string, flags) =>
  runCommand(async () => (await commands.build()).buildCommand(base, target, flags)),
);

signingOptions(
  registryOptions(
    program
      .command("push")
      .description("push a built image, skipping blobs the registry already has")
      .argument("<TARGET>", "an image built with `build`")
      .option("--store <dir>", "local image store")
      .option("--json", "print the result as JSON"),
  ),
).action((target: string, flags) => runCommand(async () => (await commands.push()).pushCommand(target, flags)));

registryOptions(
  program
    .command("export")
    .description("write a partition as an ordinary OCI image (a layout directory, or an archive if DEST ends in .tar)")
    .argument("<REF--x1.y1.x2.y2[--...]>", "image (local, oci:DIR[:tag] or remote) and the partition to take")
    .argument("<DEST>", "OCI layout directory or .tar file")
    .option("--platform <os/arch[/variant]>", "export only this platform (repeatable)", collect, [])
    .option("--store <dir>", "local image store")
    .option("--json", "print the result as JSON"),
).action((ref: string, dest: string, flags) =>
  runCommand(async () => (await commands.export()).exportCommand(ref, dest, flags)),
);

registryOptions(
  program
    .command("copy")
    .description("copy a 2DFS image between registries, allotments included")
    .argument("<SRC>", "source image")
    .argument("<DST>", "destination image")
    .option("--json", "print the result as JSON"),
).action((src: string, dst: string, flags) =>
  runCommand(async () => (await commands.copy()).copyCommand(src, dst, flags)),
);

registryOptions(
  program
    .command("inspect")
    .description("show the field as a grid, where each allotment's files land, and what each semantic tag pulls")
    .argument("<REF>", "image: local, oci:DIR[:tag], or in a registry; a semantic tag (REF--LABEL) shows what it pulls")
    .option("--remote", "read the image from its registry, even if the local store has it")
    .option("--store <dir>", "local image store")
    .option("--json", "print the result as JSON"),
).action((ref: string, flags) => runCommand(async () => (await commands.inspect()).inspectCommand(ref, flags)));

program
  .command("images")
  .description("list the images in the local store: digest, platforms, field, size, bytes shared, last use")
  .option("--store <dir>", "local image store")
  .option("--json", "print the result as JSON")
  .action((flags) => runCommand(async () => (await commands.store()).imagesCommand(flags)));

program
  .command("rm")
  .description("remove images from the local store (prune then frees what no image references)")
  .argument("<REF...>", "images to remove, e.g. localhost:5000/models/llm:v1")
  .option("--store <dir>", "local image store")
  .option("--json", "print the result as JSON")
  .action((refs: string[], flags) => runCommand(async () => (await commands.store()).rmCommand(refs, flags)));

program
  .command("prune")
  .description("remove the blobs and cache entries no stored image references, and say how many bytes that frees")
  .option("--dry-run", "say what would be freed, remove nothing")
  .option("--store <dir>", "local image store")
  .option("--json", "print the result as JSON")
  .addHelpText(
    "after",
    "\nSafe while builds run: it waits for running builds, pushes and exports to finish, and they wait for it.",
  )
  .action((flags) => runCommand(async () => (await commands.store()).pruneCommand(flags)));

program
  .command("du")
  .description("how much disk the local store and the allotment cache take, and what prune would free")
  .option("--store <dir>", "local image store")
  .option("--json", "print the result as JSON")
  .action((flags) => runCommand(async () => (await commands.store()).duCommand(flags)));

const key = program.command("key").description("make signing keys");
key
  .command("generate")
  .description("write cosign.key and cosign.pub, as `cosign generate-key-pair` does (ECDSA P-256)")
  .option("--output <DIR>", "where to write them", ".")
  .option("--passphrase-stdin", "read the passphrase from stdin (else $TDFS_KEY_PASSPHRASE or a prompt)")
  .option("--json", "print the result as JSON")
  .action((flags) => runCommand(async () => (await commands.key()).keyGenerateCommand(flags)));

registryOptions(
  program
    .command("sign")
    .description("sign an image already in a registry (and its named partitions and `all`), or one partition of it")
    .argument("<REF[--LABEL]>", "e.g. localhost:5000/models/llm:v1 or localhost:5000/models/llm:v1--0.0.1.3")
    .requiredOption("--key <KEY>", "cosign.key to sign with")
    .option("--sign-partition <LABEL>", "also sign this partition (repeatable)", collect, [])
    .option("--passphrase-stdin", "read the key's passphrase from stdin (else $TDFS_KEY_PASSPHRASE or a prompt)")
    .option("--json", "print the result as JSON"),
).action((ref: string, flags) => runCommand(async () => (await commands.sign()).signCommand(ref, flags)));

registryOptions(
  program
    .command("verify")
    .description(
      "check an image's signature, or recompute a partition from its signed source and check what the registry serves",
    )
    .argument("<REF[--LABEL]>", "e.g. localhost:5000/models/llm:v1--jetson")
    .requiredOption("--key <PUB>", "cosign.pub to trust (repeatable)", collect, [])
    .option("--json", "print the result as JSON"),
).action((ref: string, flags) => runCommand(async () => (await commands.verify()).verifyCommand(ref, flags)));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (!(e instanceof CommanderError)) throw e;
  // Help and version are successes; every other parse error is a usage error.
  const ok = e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help";
  process.exitCode = ok ? EXIT_OK : EXIT_USAGE;
}
