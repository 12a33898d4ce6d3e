/**
 * Prints the AUTH_CONFIG hash of a password read from stdin (one trailing newline is dropped):
 *
 *   printf '%s' 'correct horse' | node scripts/hash-password.ts [iterations]
 *
 * The hash is PBKDF2-HMAC-SHA256 with a random salt, computed by the same module the Worker
 * verifies with. Iterations default to 100000, the most Workers allows.
 */
import { text } from "node:stream/consumers";
import { hashPassword, PBKDF2_MAX_ITERATIONS } from "../worker/auth/password.ts";

const iterations = Number(process.argv[2] ?? PBKDF2_MAX_ITERATIONS);
if (!Number.isInteger(iterations) || iterations < 1 || iterations > PBKDF2_MAX_ITERATIONS) {
  console.error(`iterations must be an integer from 1 to ${PBKDF2_MAX_ITERATIONS}`);
  process.exit(2);
}
if (process.stdin.isTTY) console.error("password (then Enter, Ctrl-D):");
const password = (await text(process.stdin)).replace(/\r?\n$/, "");
if (password === "") {
  console.error("refusing an empty password");
  process.exit(2);
}
console.log(await hashPassword(password, iterations));
