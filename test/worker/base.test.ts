import { describe, expect, it } from "vitest";
import { call } from "./helpers/registry.ts";

describe("GET /v2/", () => {
  it("answers 200 with the API version header and an empty JSON object", async () => {
    const res = await call("/v2/");
    expect(res.status).toBe(200);
    expect(res.headers.get("Docker-Distribution-API-Version")).toBe("registry/2.0");
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({});
  });

  it("answers HEAD with 200 and no body", async () => {
    const res = await call("/v2/", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("Docker-Distribution-API-Version")).toBe("registry/2.0");
    expect(await res.text()).toBe("");
  });

  it("redirects /v2 to /v2/", async () => {
    const res = await call("/v2", { redirect: "manual" });
    expect(res.status).toBe(301);
    expect(new URL(res.headers.get("Location")!, "http://registry.test").pathname).toBe("/v2/");
  });
});
