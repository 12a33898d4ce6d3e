/**
 * The token flow as the CLI speaks it: core's Authenticator (core/oci/token-auth.ts), with the
 * CLI's advice for a registry that wants credentials and its names for network failures.
 */
import { Authenticator, type AuthOptions } from "../../../core/oci/token-auth.ts";
import { networkError } from "./network-error.ts";

export {
  AuthError,
  parseChallenge,
  repositoryScope,
  type AuthOptions,
  type Challenge,
} from "../../../core/oci/token-auth.ts";

/** What to tell a user who sent no credentials to a registry that wants some. */
export const CREDENTIALS_NEEDED =
  "the registry requires a username and password: use --username with --password-stdin, TDFS_USERNAME/TDFS_PASSWORD, or docker, podman or skopeo login";

export function cliAuthenticator(creds: AuthOptions = {}): Authenticator {
  return new Authenticator(creds, {
    credentialsNeeded: CREDENTIALS_NEEDED,
    networkError: (e, url) => networkError(e, url),
  });
}

export type { Authenticator };
