#!/usr/bin/env node
import { MediaType } from "../../core/oci/media-types.ts";
const x: string = MediaType.TdfsField;
console.log(x);
