/**
 * The one client script of the web view (served as /ui/_/app.<hash>.js, no framework, no inline
 * script). It adds what server-rendered HTML cannot do alone: the sign-in that keeps its token
 * in the tab, the repository filter as you type, and the field page's selection (field.ts).
 */
import { authHeaders, signedInUser, signIn, signOut } from "./auth.ts";
import { initField } from "./field.ts";

function init(): void {
  initAccount();
  initRepoFilter();
  initField(authHeaders);
}

function initAccount(): void {
  const form = document.querySelector<HTMLFormElement>("#signin");
  const out = document.querySelector<HTMLButtonElement>("#signout");
  form?.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const error = document.querySelector("#signin-error");
    void signIn(String(data.get("username") ?? ""), String(data.get("password") ?? "")).then(async (problem) => {
      if (problem !== undefined) {
        if (error) error.textContent = problem;
        return;
      }
      await showSignedInView();
    });
  });
  out?.addEventListener("click", () => {
    signOut();
    location.reload();
  });
}

/** Asks for this page again with the tab's token and shows what the signed-in user may see. */
async function showSignedInView(): Promise<void> {
  const headers = await authHeaders();
  if (!headers.Authorization) return;
  const res = await fetch(location.href, { headers });
  const doc = new DOMParser().parseFromString(await res.text(), "text/html");
  if (doc.body.dataset.stale === "1") {
    // The registry no longer takes the token (expired, or the signing key changed).
    signOut();
    return;
  }
  document.title = doc.title;
  document.body.replaceWith(document.adoptNode(doc.body));
  init();
}

function initRepoFilter(): void {
  const input = document.querySelector<HTMLInputElement>("#repo-filter");
  const items = document.querySelectorAll<HTMLElement>("#repos li[data-repo]");
  input?.addEventListener("input", () => {
    const q = input.value.trim();
    for (const li of items) li.hidden = !(li.dataset.repo ?? "").includes(q);
  });
}

init();
if (document.body.dataset.auth === "token" && document.body.dataset.user === "" && signedInUser() !== undefined) {
  void showSignedInView();
}
