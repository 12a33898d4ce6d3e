/**
 * A plain HTTP proxy in front of a real registry that writes down every request the client sent
 * (method, path, the headers that matter for uploads) and can fail chosen ones the way networks
 * and overloaded registries do: a 503, a connection dropped before anything is forwarded, or
 * one cut after part of its body reached the registry.
 * The Host header is passed through, so distribution builds its upload Locations on the proxy's
 * address and every later request comes back through it.
 */
import { createServer, request, type IncomingMessage, type Server } from "node:http";

export interface SeenRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  contentLength: string | undefined;
  contentRange: string | undefined;
  transferEncoding: string | undefined;
  range: string | undefined;
  /** What the proxy did: forwarded (with the upstream status) or a fault it injected. */
  outcome: number | "dropped" | "cut";
}

/**
 * Called for each request before it is forwarded; a fault replaces forwarding, except "corrupt",
 * which forwards and flips one bit of the response body (an upstream serving the wrong bytes).
 */
export type Fault = "503" | "drop" | "corrupt" | { cutAfter: number };
export type FaultPlan = (req: IncomingMessage, seen: readonly SeenRequest[]) => Fault | undefined;

export interface RecordingProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  host: string;
  seen: SeenRequest[];
  setFaults(plan: FaultPlan | undefined): void;
  stop(): Promise<void>;
}

export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const target = new URL(upstream);
  const seen: SeenRequest[] = [];
  let faults: FaultPlan | undefined;

  const server: Server = createServer((req, res) => {
    const entry: SeenRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      contentLength: req.headers["content-length"],
      contentRange: req.headers["content-range"],
      transferEncoding: req.headers["transfer-encoding"],
      range: req.headers.range,
      outcome: "dropped",
    };
    const fault = faults?.(req, seen);
    seen.push(entry);
    if (fault === "drop") {
      req.socket.destroy();
      return;
    }
    if (fault === "503") {
      entry.outcome = 503;
      req.resume();
      res.writeHead(503, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "UNAVAILABLE", message: "injected by the test proxy" }] }));
      return;
    }
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        entry.outcome = upRes.statusCode ?? 0;
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (fault !== "corrupt") {
          upRes.pipe(res);
          return;
        }
        let first = true;
        upRes.on("data", (b: Buffer) => {
          if (first && b.length > 0) b[b.length - 1]! ^= 1;
          first = false;
          res.write(b);
        });
        upRes.on("end", () => res.end());
      },
    );
    up.on("error", () => res.destroy());
    req.on("error", () => up.destroy());
    if (typeof fault === "object") {
      let forwarded = 0;
      req.on("data", (b: Buffer) => {
        if (forwarded >= fault.cutAfter) return;
        const part = b.subarray(0, fault.cutAfter - forwarded);
        forwarded += part.length;
        up.write(part);
        if (forwarded >= fault.cutAfter) {
          entry.outcome = "cut";
          // Let the registry take in what it got, then break both connections.
          setTimeout(() => {
            up.destroy();
            req.socket.destroy();
          }, 100);
        }
      });
      return;
    }
    req.pipe(up);
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (typeof addr !== "object" || !addr) throw new Error("proxy has no address");
  const host = `127.0.0.1:${addr.port}`;
  return {
    url: `http://${host}`,
    host,
    seen,
    setFaults: (plan) => {
      faults = plan;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
