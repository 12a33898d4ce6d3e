/**
 * An unreachable registry, as the user sees it: the host:port, the cause in words, a hint, and
 * exit code 1, at once rather than after minutes of retries. Real failures on loopback (nothing
 * listening; a plain-http server spoken to with TLS), and the classifier on the causes Node's
 * fetch reports for the rest (DNS, certificates, timeouts), which this machine cannot provoke
 * without leaving loopback.
 */
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { networkError } from "../../builder-cli/src/registry/network-error.ts";
import { freePort } from "../helpers/process.ts";
import { CLI, sandbox, type Sandbox } from "./builder-helpers.ts";

const exec = promisify(execFile);

/** Runs the CLI without blocking this process (the TLS case needs its server to answer). */
async function cli(s: Sandbox, args: string[], cwd: string): Promise<{ code: number; stderr: string; ms: number }> {
  const started = Date.now();
  try {
    const r = await exec(process.execPath, [CLI, ...args], { cwd, env: s.env });
    return { code: 0, stderr: r.stderr, ms: Date.now() - started };
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { code: err.code, stderr: err.stderr, ms: Date.now() - started };
  }
}

function fetchFailed(cause: unknown): TypeError {
  return new TypeError("fetch failed", { cause });
}

function withCode(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe("networkError", () => {
  const url = "https://registry.example.com:5000/v2/";
  it.each([
    [
      withCode("ECONNREFUSED"),
      /^cannot reach registry\.example\.com:5000: connection refused \(ECONNREFUSED\)\n  hint: nothing listens on registry\.example\.com:5000/,
      false,
    ],
    [
      withCode("ENOTFOUND", "getaddrinfo ENOTFOUND registry.example.com"),
      /DNS name not found \(ENOTFOUND\)\n  hint: no DNS name registry\.example\.com: check the registry host for typos/,
      false,
    ],
    [withCode("EAI_AGAIN"), /DNS name not found \(EAI_AGAIN\)\n  hint: the name server did not answer/, true],
    [
      withCode("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"),
      /TLS \(DEPTH_ZERO_SELF_SIGNED_CERT\): self-signed certificate\n  hint: .*NODE_EXTRA_CA_CERTS/,
      false,
    ],
    [
      withCode("ERR_SSL_WRONG_VERSION_NUMBER", "ssl3_get_record:wrong version number"),
      /TLS .*\n  hint: registry\.example\.com:5000 does not speak TLS: if it is a plain-http registry, pass --plain-http/,
      false,
    ],
    [
      withCode("UND_ERR_CONNECT_TIMEOUT", "Connect Timeout Error"),
      /: timeout \(UND_ERR_CONNECT_TIMEOUT\)\n  hint: .*did not answer in time/,
      true,
    ],
    [withCode("ECONNRESET"), /connection reset \(ECONNRESET\)/, true],
  ])("%s", (cause, message, transient) => {
    const e = networkError(fetchFailed(cause), url);
    expect(e?.message).toMatch(message);
    expect(e?.transient).toBe(transient);
  });

  it("explains a port that fetch refuses to use", () => {
    expect(networkError(fetchFailed(new Error("bad port")), "http://127.0.0.1:6000/v2/")?.message).toMatch(
      /^cannot reach 127\.0\.0\.1:6000: network: port blocked by fetch\n  hint: fetch never connects to port 6000/,
    );
  });

  it("finds the code inside an AggregateError (a name with several addresses)", () => {
    const agg = new AggregateError([withCode("ECONNREFUSED"), withCode("ECONNREFUSED")], "");
    expect(networkError(fetchFailed(agg), "http://localhost:8787/v2/")?.message).toMatch(
      /^cannot reach localhost:8787: connection refused/,
    );
  });

  it("retries a refused connection once the registry has answered (a restart), not before", () => {
    expect(networkError(fetchFailed(withCode("ECONNREFUSED")), url, true)?.transient).toBe(true);
  });

  it("leaves other errors alone", () => {
    expect(networkError(new Error("boom"), url)).toBeUndefined();
    expect(networkError(new TypeError("not a network error"), url)).toBeUndefined();
  });
});

describe("2dfs-push against a registry it cannot reach", () => {
  let s: Sandbox;
  let model: string;
  let plain: Server;
  let plainPort: number;

  beforeAll(async () => {
    s = await sandbox();
    model = await s.copyFixture("2x2", "model");
    // A plain-http server on a loopback address the CLI does not assume to be plain http.
    plain = createServer((_req, res) => res.end("{}"));
    await new Promise<void>((r) => plain.listen(0, "127.0.0.2", () => r()));
    plainPort = (plain.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((r) => plain?.close(r));
    await s?.cleanup();
  });

  it("names host:port and 'connection refused', hints, and exits 1 at once", async () => {
    const port = await freePort();
    const r = await cli(s, ["build", "scratch", `127.0.0.1:${port}/ml/model:v1`, "--push"], model);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^2dfs-push: cannot reach 127\\.0\\.0\\.1:${port}: connection refused \\(ECONNREFUSED\\)\\n  hint: nothing listens on 127\\.0\\.0\\.1:${port}: is the registry running, and are the host and port right\\?\\n$`,
        "m",
      ),
    );
    expect(r.ms).toBeLessThan(5000);
  });

  it("says TLS and suggests --plain-http for a plain-http registry spoken to over https", async () => {
    const built = await cli(s, ["build", "scratch", `127.0.0.2:${plainPort}/ml/model:v1`], model);
    expect(built.code).toBe(0);
    const pushed = await cli(s, ["push", `127.0.0.2:${plainPort}/ml/model:v1`], model);
    expect(pushed.code).toBe(1);
    expect(pushed.stderr).toMatch(new RegExp(`cannot reach 127\\.0\\.0\\.2:${plainPort}: TLS \\(`));
    expect(pushed.stderr).toMatch(/hint: .*does not speak TLS: if it is a plain-http registry, pass --plain-http/);
    expect(pushed.ms).toBeLessThan(5000);
  });
});
