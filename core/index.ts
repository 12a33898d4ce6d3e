export * from "./oci/errors.ts";
export * from "./oci/digest.ts";
export * from "./oci/media-types.ts";
export * from "./oci/reference.ts";
export * from "./oci/manifest.ts";
