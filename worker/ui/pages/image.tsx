/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/**
 * `/ui/<name>:<tag>`: one image. A 2DFS image shows its field (field.tsx) with a platform switch,
 * its named partitions, the selection panel and a comparison with another tag; every image shows
 * its platforms' layers, config summary, annotations and referrers.
 */
import type { FC } from "hono/jsx";
import type { Descriptor } from "../../../core/oci/manifest.ts";
import type { Rect } from "../../../core/tdfs/label.ts";
import { formatBytes, shortDigest } from "../format.ts";
import type { ImageView, PlatformView } from "../images.ts";
import type { PlatformField, PullTarget, SelectionSummary } from "../selection.ts";
import type { SignatureView } from "../signatures.ts";
import { FieldGrid, SelectionPanel, type GridOrigin } from "./field.tsx";

export interface ImagePageProps {
  image: ImageView;
  /** The platform on screen. */
  platform: string;
  fields: Map<string, PlatformField>;
  rects: readonly Rect[];
  summary?: SelectionSummary;
  partitions: { usable: [string, string][]; unusable: [string, string][] };
  compare?: { tag: string; found: boolean };
  otherTags: string[];
  referrers: Descriptor[];
  signatures: SignatureView;
  /** The signatures of the selected partition, when a selection names one. */
  partitionSignatures?: SignatureView & { reference: string };
  target: PullTarget;
  /** The part of a large field on screen. */
  origin: GridOrigin;
  /** The page's query without the window's position. */
  query: URLSearchParams;
}

export const ImagePage: FC<ImagePageProps> = (p) => {
  const { image } = p;
  const withField = image.platforms.filter((pl) => pl.field);
  return (
    <div
      class="image"
      id="image"
      data-repo={image.repo}
      data-tag={image.tag}
      data-host={p.target.host}
      data-plain-http={p.target.plainHttp ? "1" : "0"}
      data-multi-platform={p.target.multiPlatform ? "1" : "0"}
      data-pull-user={p.target.user}
      data-compare={p.compare?.found ? p.compare.tag : undefined}
    >
      <h1>
        {image.repo}:{image.tag}
      </h1>
      <p class="meta">
        <code title={image.digest}>{image.digest}</code> · {image.mediaType} · {image.platforms.length} platform
        {image.platforms.length === 1 ? "" : "s"}
      </p>
      {image.platforms.length > 1 ? <PlatformSwitch platforms={image.platforms} current={p.platform} /> : null}
      {withField.length > 0 ? <FieldArea {...p} /> : null}
      {image.platforms.map((pl) => (
        <PlatformDetails repo={image.repo} platform={pl} open={withField.length === 0 && pl.platform === p.platform} />
      ))}
      <Annotations title="Annotations" annotations={image.annotations} />
      <Signatures title="Signatures" what={`${image.repo}:${image.tag}`} view={p.signatures} id="signatures" />
      {p.partitionSignatures ? (
        <Signatures
          title="Signatures of the selected partition"
          what={p.partitionSignatures.reference}
          view={p.partitionSignatures}
          id="partition-signatures"
        />
      ) : null}
      <Referrers repo={image.repo} referrers={p.referrers} />
    </div>
  );
};

const PlatformSwitch: FC<{ platforms: PlatformView[]; current: string }> = ({ platforms, current }) => (
  <nav class="platforms" aria-label="Platform" id="platforms">
    {platforms.map((pl) => (
      <a
        href={`?platform=${encodeURIComponent(pl.platform)}`}
        data-platform={pl.platform}
        aria-current={pl.platform === current ? "true" : undefined}
      >
        {pl.platform}
      </a>
    ))}
  </nav>
);

const FieldArea: FC<ImagePageProps> = (p) => (
  <div class="field-area">
    <div class="field-main">
      <div class="toolbar">
        <span>Drag to select, shift-drag to add a rectangle; arrows, Enter, Shift+arrows with the keyboard.</span>
        <span class="zoom">
          <button type="button" data-zoom="-1" aria-label="Zoom out">
            −
          </button>
          <button type="button" data-zoom="1" aria-label="Zoom in">
            +
          </button>
          <button type="button" id="clear-selection">
            Clear
          </button>
        </span>
      </div>
      {p.image.platforms.map((pl) =>
        pl.field ? (
          <FieldGrid
            platform={pl.platform}
            field={pl.field}
            data={p.fields.get(pl.platform)!}
            hidden={pl.platform !== p.platform}
            rects={p.rects}
            origin={p.origin}
            query={p.query}
          />
        ) : pl.fieldError ? (
          <p class="problem" hidden={pl.platform !== p.platform}>
            The field of {pl.platform} cannot be shown: {pl.fieldError}
          </p>
        ) : null,
      )}
      <section class="cell-info" id="cell-info" aria-live="polite" hidden>
        <h2 id="cell-title">Cell</h2>
        <p id="cell-facts"></p>
        <ul id="cell-files" class="files"></ul>
      </section>
    </div>
    <div class="field-side">
      {p.summary ? (
        <SelectionPanel summary={p.summary} {...(p.compare?.found ? { compareTag: p.compare.tag } : {})} />
      ) : null}
      <Partitions {...p.partitions} />
      <CompareForm {...p} />
    </div>
  </div>
);

const Partitions: FC<ImagePageProps["partitions"]> = ({ usable, unusable }) => (
  <section class="partitions">
    <h2>Named partitions</h2>
    {usable.length === 0 && unusable.length === 0 ? <p class="empty">This image names no partition.</p> : null}
    <ul id="partitions">
      {usable.map(([name, value]) => (
        <li>
          <button type="button" data-partition={name} data-label={value}>
            {name}
          </button>{" "}
          <code>{value}</code>
        </li>
      ))}
      {unusable.map(([name, value]) => (
        <li class="unusable">
          <span class="name">{name}</span> <code>{value}</code> <em>(not a name a tag can spell)</em>
        </li>
      ))}
    </ul>
  </section>
);

const CompareForm: FC<ImagePageProps> = (p) => (
  <section class="compare">
    <h2>Compare</h2>
    <form method="get" id="compare-form">
      <input type="hidden" name="platform" value={p.platform} />
      <input type="hidden" name="sel" value={p.summary && p.rects.length > 0 ? p.summary.label : ""} />
      <label>
        Compare with{" "}
        <select name="compare">
          <option value="">no other tag</option>
          {p.otherTags.map((t) => (
            <option value={t} selected={p.compare?.tag === t}>
              {t}
            </option>
          ))}
        </select>
      </label>{" "}
      <button type="submit">Compare</button>
    </form>
    {p.compare && !p.compare.found ? <p class="problem">There is no tag {p.compare.tag} to compare with.</p> : null}
    {p.compare?.found ? (
      <p>
        Cells marked <span class="legend changed">changed</span> hold a different allotment than in {p.compare.tag}.
      </p>
    ) : null}
  </section>
);

const PlatformDetails: FC<{ repo: string; platform: PlatformView; open: boolean }> = ({ repo, platform: pl, open }) => (
  <details class="platform-details" open={open} data-platform={pl.platform}>
    <summary>
      {pl.platform}: {pl.layers.length} layer{pl.layers.length === 1 ? "" : "s"}
      {pl.field ? `, a field of ${pl.field.cells.length} allotments` : ""}
    </summary>
    <p class="meta">
      Manifest <code>{pl.manifest.digest}</code> · config <code>{shortDigest(pl.config.digest)}</code>
    </p>
    <div class="table-scroll">
      <table class="layers">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Digest</th>
            <th scope="col">Media type</th>
            <th scope="col">Size</th>
          </tr>
        </thead>
        <tbody>
          {pl.layers.map((l, i) => (
            <tr>
              <td>{i}</td>
              <td>
                <a href={`/ui/${repo}@${l.digest}`} title="Files in this layer">
                  <code>{shortDigest(l.digest)}</code>
                </a>
              </td>
              <td>{l.mediaType}</td>
              <td data-bytes={l.size}>{formatBytes(l.size)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    {pl.configSummary ? (
      <dl class="config">
        {pl.configSummary.created ? (
          <>
            <dt>Created</dt>
            <dd>{pl.configSummary.created}</dd>
          </>
        ) : null}
        {pl.configSummary.entrypoint ? (
          <>
            <dt>Entrypoint</dt>
            <dd>
              <code>{JSON.stringify(pl.configSummary.entrypoint)}</code>
            </dd>
          </>
        ) : null}
        {pl.configSummary.cmd ? (
          <>
            <dt>Cmd</dt>
            <dd>
              <code>{JSON.stringify(pl.configSummary.cmd)}</code>
            </dd>
          </>
        ) : null}
        {pl.configSummary.workingDir ? (
          <>
            <dt>Working dir</dt>
            <dd>{pl.configSummary.workingDir}</dd>
          </>
        ) : null}
        {pl.configSummary.user ? (
          <>
            <dt>User</dt>
            <dd>{pl.configSummary.user}</dd>
          </>
        ) : null}
        <dt>Environment</dt>
        <dd>
          {pl.configSummary.env.length === 0 ? "none" : pl.configSummary.env.map((e) => <code class="env">{e}</code>)}
        </dd>
        <dt>History</dt>
        <dd>{pl.configSummary.history} entries</dd>
      </dl>
    ) : null}
    {pl.configSummary && pl.configSummary.labels.length > 0 ? (
      <Annotations title="Labels" annotations={Object.fromEntries(pl.configSummary.labels)} />
    ) : null}
    <Annotations title="Manifest annotations" annotations={pl.annotations} />
  </details>
);

const Annotations: FC<{ title: string; annotations: Record<string, string> }> = ({ title, annotations }) => {
  const entries = Object.entries(annotations);
  if (entries.length === 0) return null;
  return (
    <section class="annotations">
      <h2>{title}</h2>
      <dl>
        {entries.map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </>
        ))}
      </dl>
    </section>
  );
};

const Referrers: FC<{ repo: string; referrers: Descriptor[] }> = ({ referrers }) => (
  <section class="referrers">
    <h2>Referrers</h2>
    {referrers.length === 0 ? (
      <p class="empty">No artifact refers to this image.</p>
    ) : (
      <ul>
        {referrers.map((r) => (
          <li>
            <code title={r.digest}>{shortDigest(r.digest)}</code> {r.artifactType ?? r.mediaType} ({formatBytes(r.size)}
            )
          </li>
        ))}
      </ul>
    )}
  </section>
);

/** One row per signature found; every string in it comes from an image and is escaped by JSX. */
const Signatures: FC<{ title: string; what: string; view: SignatureView; id: string }> = ({
  title,
  what,
  view,
  id,
}) => (
  <section class="signatures" id={id} data-digest={view.digest}>
    <h2>{title}</h2>
    {view.problem ? <p class="problem">{view.problem}</p> : null}
    {view.rows.length === 0 ? (
      <p class="empty">
        No signature of {what} (<code>{shortDigest(view.digest)}</code>) is stored here.
      </p>
    ) : (
      <div class="table-scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">Format</th>
              <th scope="col">Key</th>
              <th scope="col">Checked</th>
              <th scope="col">Names</th>
            </tr>
          </thead>
          <tbody>
            {view.rows.map((r) => (
              <tr data-format={r.format} data-fingerprint={r.fingerprint}>
                <td>{r.format === "bundle" ? "Sigstore bundle" : "simple signing (.sig)"}</td>
                <td>{r.fingerprint ? <code title={r.fingerprint}>{shortDigest(r.fingerprint)}</code> : "not named"}</td>
                <td>{r.checked}</td>
                <td>{r.identity ? <code>{r.identity}</code> : "the digest only"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    )}
  </section>
);
