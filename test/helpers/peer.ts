/**
 * The CNCF distribution registry (Debian `docker-registry`) as a private peer: started through
 * scripts/peer-registry.sh on a free port with its storage in a temp dir, removed on stop.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, REPO_ROOT, run } from "./process.ts";

const SCRIPT = join(REPO_ROOT, "scripts", "peer-registry.sh");

export interface PeerRegistry {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, as image references spell the host. */
  host: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export interface PeerOptions {
  /** An htpasswd file (bcrypt): the peer then asks for Basic credentials. */
  htpasswd?: string;
}

export async function startPeerRegistry(opts: PeerOptions = {}): Promise<PeerRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "2dfs-peer-"));
  const port = await freePort();
  try {
    const { stdout } = await run(SCRIPT, ["start", dir, String(port)], {
      ...(opts.htpasswd ? { env: { PEER_HTPASSWD: opts.htpasswd } } : {}),
    });
    return {
      url: stdout.trim(),
      host: `127.0.0.1:${port}`,
      port,
      dir,
      stop: async () => {
        await run(SCRIPT, ["stop", dir]);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
