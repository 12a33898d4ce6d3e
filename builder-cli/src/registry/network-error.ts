/**
 * What to tell a user when a registry cannot be reached. Node's fetch fails with a bare
 * "fetch failed" and hides the reason in `cause` (sometimes two levels down, or in an
 * AggregateError when a name has several addresses); this digs it out and names the host:port,
 * the cause in words, and what to check.
 *
 * Whether trying again can help: a refused connection, an unknown name or a TLS mismatch will not
 * change within seconds on the first contact, so they fail at once instead of after minutes of
 * retries; once the registry has answered in this run, a refused connection is more likely a
 * restart and is retried like timeouts and resets.
 */

export type NetworkCause =
  "connection refused" | "DNS name not found" | "TLS" | "timeout" | "connection reset" | "unreachable" | "network";

export class NetworkError extends Error {
  readonly host: string;
  /** The cause in words, as printed. */
  readonly reason: NetworkCause;
  readonly code: string | undefined;
  readonly transient: boolean;

  constructor(
    host: string,
    cause: NetworkCause,
    code: string | undefined,
    detail: string,
    hint: string,
    transient: boolean,
  ) {
    super(`cannot reach ${host}: ${cause}${code ? ` (${code})` : ""}${detail ? `: ${detail}` : ""}\n  hint: ${hint}`);
    this.name = "NetworkError";
    this.host = host;
    this.reason = cause;
    this.code = code;
    this.transient = transient;
  }
}

const TIMEOUT_CODES = new Set([
  "ETIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);
const RESET_CODES = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED", "ECONNABORTED"]);
const UNREACHABLE_CODES = new Set(["EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "ENETDOWN"]);

/**
 * The NetworkError for a failed fetch of `url`, or undefined when `e` is not a network failure
 * (e.g. an aborted request or a failing request body, which callers handle themselves).
 * `reached`: whether this registry has answered before in this run.
 */
export function networkError(e: unknown, url: string | URL, reached = false): NetworkError | undefined {
  if (!(e instanceof TypeError) || e.cause === undefined) return undefined;
  const host = new URL(url).host;
  const found = findCode(e.cause);
  const code = found?.code;
  const message = found?.message ?? String(e.cause);
  if (code === undefined && message === "bad port") {
    // The fetch standard blocks some ports (e.g. 9, 25, 6000) whatever listens there.
    return new NetworkError(
      host,
      "network",
      undefined,
      "port blocked by fetch",
      `fetch never connects to port ${new URL(url).port}: run the registry on another port`,
      false,
    );
  }
  if (code === "ECONNREFUSED") {
    return new NetworkError(
      host,
      "connection refused",
      code,
      "",
      `nothing listens on ${host}: is the registry running, and are the host and port right?`,
      reached,
    );
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME" || code === "EAI_FAIL") {
    const temporary = code === "EAI_AGAIN";
    return new NetworkError(
      host,
      "DNS name not found",
      code,
      "",
      temporary
        ? `the name server did not answer for ${hostname(host)}: check your network or VPN, then try again`
        : `no DNS name ${hostname(host)}: check the registry host for typos`,
      temporary,
    );
  }
  if (code !== undefined && isTlsCode(code, message)) {
    const plain = /wrong version number|packet length too long|http request/i.test(message);
    return new NetworkError(
      host,
      "TLS",
      code,
      message,
      plain
        ? `${host} does not speak TLS: if it is a plain-http registry, pass --plain-http`
        : "the registry's certificate is not trusted here: add its CA with NODE_EXTRA_CA_CERTS=/path/ca.pem (or pass --plain-http for a plain-http registry)",
      false,
    );
  }
  if (code !== undefined && TIMEOUT_CODES.has(code)) {
    return new NetworkError(
      host,
      "timeout",
      code,
      "",
      `${host} did not answer in time: check your network, VPN or proxy and the registry's health`,
      true,
    );
  }
  if (code !== undefined && RESET_CODES.has(code)) {
    return new NetworkError(
      host,
      "connection reset",
      code,
      "",
      `${host} closed the connection: a proxy or the registry dropped it; try again`,
      true,
    );
  }
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return new NetworkError(host, "unreachable", code, "", `no route to ${host}: check your network or VPN`, reached);
  }
  return new NetworkError(
    host,
    "network",
    code,
    message,
    `check that ${host} is the registry's address and that it is up`,
    true,
  );
}

function isTlsCode(code: string, message: string): boolean {
  return (
    code.startsWith("ERR_SSL") ||
    code.startsWith("ERR_TLS") ||
    code.startsWith("CERT_") ||
    code.includes("CERT") ||
    code === "EPROTO" ||
    /SSL|TLS|certificate/i.test(message)
  );
}

/** The first error with a `code` in a cause chain or an AggregateError's errors. */
function findCode(e: unknown, depth = 0): { code: string | undefined; message: string } | undefined {
  if (typeof e !== "object" || e === null || depth > 4) return undefined;
  const err = e as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  const message = typeof err.message === "string" ? err.message : "";
  if (typeof err.code === "string") return { code: err.code, message };
  for (const inner of [err.cause, ...(Array.isArray(err.errors) ? err.errors : [])]) {
    const found = findCode(inner, depth + 1);
    if (found?.code) return found;
  }
  return { code: undefined, message };
}

function hostname(host: string): string {
  return host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
}
