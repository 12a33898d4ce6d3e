/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/**
 * The frame of every page: head (one stylesheet, one deferred script, both from this Worker),
 * breadcrumbs, and the sign-in form when the registry asks for credentials. Everything that
 * comes from an image reaches the HTML through JSX, which escapes it.
 */
import type { Child, FC } from "hono/jsx";
import { html } from "hono/html";
import { ICON_PATH, SCRIPT_PATH, STYLE_PATH } from "../assets.ts";
import type { Viewer } from "../viewer.ts";

export interface Crumb {
  text: string;
  href?: string;
}

export const Layout: FC<{ title: string; viewer: Viewer; crumbs: Crumb[]; children?: Child }> = ({
  title,
  viewer,
  crumbs,
  children,
}) => (
  <>
    {html`<!doctype html>`}
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{title} · 2DFS registry</title>
        <link rel="icon" href={ICON_PATH} type="image/svg+xml" />
        <link rel="stylesheet" href={STYLE_PATH} />
        <script src={SCRIPT_PATH} defer></script>
      </head>
      <body
        data-auth={viewer.authOn ? "token" : "none"}
        data-user={viewer.user ?? ""}
        data-stale={viewer.staleCredentials ? "1" : "0"}
      >
        <header class="top">
          <nav class="crumbs" aria-label="Breadcrumbs">
            <a href="/ui/">Registry</a>
            {crumbs.map((c) => (
              <>
                <span class="sep">/</span>
                {c.href ? <a href={c.href}>{c.text}</a> : <span aria-current="page">{c.text}</span>}
              </>
            ))}
          </nav>
          {viewer.authOn ? <Account viewer={viewer} /> : null}
        </header>
        <main id="main">{children}</main>
      </body>
    </html>
  </>
);

/**
 * Sign-in: the client script posts the form to /token and keeps the token in this tab only. The
 * form never submits itself with the password in a URL: its action is a page that says so.
 */
const Account: FC<{ viewer: Viewer }> = ({ viewer }) => (
  <div class="account" id="account">
    <form id="signin" class="signin" method="post" action="/ui/_/signin" hidden={viewer.user !== undefined}>
      <input name="username" autocomplete="username" placeholder="user" aria-label="User name" required />
      <input
        name="password"
        type="password"
        autocomplete="current-password"
        placeholder="password"
        aria-label="Password"
        required
      />
      <button type="submit">Sign in</button>
      <span id="signin-error" class="error" role="alert"></span>
    </form>
    <span id="signed-in" hidden={viewer.user === undefined}>
      Signed in as <b id="user-name">{viewer.user ?? ""}</b>{" "}
      <button type="button" id="signout">
        Sign out
      </button>
    </span>
  </div>
);

export const Notice: FC<{ title: string; children?: Child }> = ({ title, children }) => (
  <section class="notice">
    <h1>{title}</h1>
    {children}
  </section>
);
