/** The Node version check that runs before the CLI loads, and its agreement with `engines`. */
import { describe, expect, it } from "vitest";
import { MIN_NODE, nodeTooOld } from "../../builder-cli/src/cli/node-version.ts";
import builderPackage from "../../builder-cli/package.json" with { type: "json" };

describe("nodeTooOld", () => {
  it.each([
    ["18.20.4", true],
    ["20.19.2", true],
    ["22.14.0", true],
    ["22.15.0", false],
    ["22.21.1", false],
    ["23.0.0", false],
    ["24.11.0", false],
    ["30.1.0", false],
  ])("%s -> %s", (version, old) => {
    expect(nodeTooOld(version)).toBe(old);
  });

  it("asks for the same Node as package.json's engines", () => {
    expect(builderPackage.engines.node).toBe(`>=${MIN_NODE.join(".")}`);
  });
});
