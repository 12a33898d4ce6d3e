/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/** `/ui/<name>@<digest>`: the files in one layer or allotment, when they can be listed cheaply. */
import type { FC } from "hono/jsx";
import type { FileListing } from "../files.ts";
import { formatBytes } from "../format.ts";

export const FilesPage: FC<{
  repo: string;
  digest: string;
  size: number;
  compression: string;
  listing: FileListing;
}> = ({ repo, digest, size, compression, listing }) => (
  <>
    <h1>Files in a layer of {repo}</h1>
    <p class="meta">
      <code>{digest}</code> · {formatBytes(size)} · {compression === "none" ? "tar" : compression}
    </p>
    {listing.listed ? (
      <>
        <ul class="files" id="files">
          {listing.entries.map((e) => (
            <li data-type={e.type}>
              <code>{e.path}</code> {e.type === "file" ? formatBytes(e.size) : e.type}
              {e.target !== undefined ? ` → ${e.target}` : ""}
            </li>
          ))}
        </ul>
        {listing.truncated ? <p class="problem">Only the first {listing.entries.length} entries are listed.</p> : null}
      </>
    ) : (
      <p class="problem" id="files-not-listed">
        {listing.reason}
      </p>
    )}
  </>
);
