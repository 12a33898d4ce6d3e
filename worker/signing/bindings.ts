/** The registry's signing settings (docs/signing.md, "The registry's key"): secrets, all optional. */
export interface SigningBindings {
  /**
   * The registry's private key, PEM: a cosign.key (with PARTITION_SIGNING_KEY_PASSPHRASE) or an
   * unencrypted PKCS#8 `PRIVATE KEY`. With it and PARTITION_TRUSTED_KEYS set, the registry signs
   * partitions nobody pre-signed, on request, when their source is signed by a trusted key.
   */
  PARTITION_SIGNING_KEY?: string;
  PARTITION_SIGNING_KEY_PASSPHRASE?: string;
  /** The public keys (PEM blocks, concatenated) of which one must have signed a source image. */
  PARTITION_TRUSTED_KEYS?: string;
}
