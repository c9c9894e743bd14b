import { createHash, createPrivateKey, createPublicKey } from "node:crypto";

import { ConfigError, Described, SECRET_VALUE } from "../../model/errors";

/**
 * Synapse's signing key file holds one line: `ed25519 <key_id> <seed>`, the
 * seed being the 32-byte Ed25519 seed in unpadded standard base64. The key
 * lives in Pulumi state as a PKCS#8 PEM (tls.PrivateKey), whose DER ends with
 * exactly that seed, so the VM can be rebuilt with the same key.
 */

const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

function unpaddedBase64(bytes: Buffer): string {
    return bytes.toString("base64").replace(/=+$/, "");
}

/** The 32-byte seed of an Ed25519 private key in PKCS#8 PEM form. */
export function ed25519SeedFromPem(pem: string): Buffer {
    const der = createPrivateKey({ key: pem, format: "pem" }).export({ format: "der", type: "pkcs8" });
    if (der.length !== 48 || !der.subarray(0, 16).equals(ED25519_PKCS8_PREFIX)) {
        throw new Error("signing key: expected an Ed25519 private key in PKCS#8 PEM form");
    }
    return der.subarray(16);
}

/** The raw 32-byte public key of an Ed25519 seed. */
export function ed25519PublicKey(seed: Buffer): Buffer {
    const priv = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
    const spki = createPublicKey(priv).export({ format: "der", type: "spki" });
    return spki.subarray(spki.length - 32);
}

/**
 * A key id derived from the public key: `a_` and four letters, the shape
 * Synapse itself uses, stable for a given key and different for a new one.
 */
export function signingKeyIdFor(publicKey: Buffer): string {
    const digest = createHash("sha256").update(publicKey).digest();
    let id = "a_";
    for (let i = 0; i < 4; i++) id += String.fromCharCode(97 + (digest[i] % 26));
    return id;
}

/** The raw public key from an OpenSSH public key line ("ssh-ed25519 AAAA..."). */
export function ed25519PublicKeyFromOpenssh(line: string): Buffer {
    const parts = line.trim().split(/\s+/);
    if (parts[0] !== "ssh-ed25519" || !parts[1]) throw new Error("signing key: expected an ssh-ed25519 public key");
    const blob = Buffer.from(parts[1], "base64");
    return blob.subarray(blob.length - 32);
}

export interface SigningKey {
    keyId: string;
    /** Unpadded base64 of the public key, as `/_matrix/key/v2/server` publishes it. */
    publicKey: string;
    /** The file line Synapse reads; secret. */
    fileLine: string;
}

/** Builds Synapse's key file line from a PKCS#8 PEM. */
export function signingKeyFromPem(pem: string): SigningKey {
    const seed = ed25519SeedFromPem(pem);
    const pub = ed25519PublicKey(seed);
    const keyId = signingKeyIdFor(pub);
    return { keyId, publicKey: unpaddedBase64(pub), fileLine: `ed25519 ${keyId} ${unpaddedBase64(seed)}\n` };
}

/**
 * Parses an existing Synapse key file (migration from another install). Only
 * the first key is used, as Synapse does.
 */
export function parseSigningKeyFile(text: string, component = "signing key", setting = "signingKey"): SigningKey {
    // The value is a secret: errors describe it, never echo it.
    const line =
        String(text ?? "")
            .split("\n")
            .map((l) => l.trim())
            .find((l) => l.length > 0) ?? "";
    const m = /^ed25519 ([A-Za-z0-9_]+) ([A-Za-z0-9+/]{43})=?$/.exec(line);
    const seed = m ? Buffer.from(m[2], "base64") : Buffer.alloc(0);
    if (!m || seed.length !== 32) {
        throw new ConfigError(
            component,
            setting,
            line === "" ? new Described("empty") : SECRET_VALUE,
            'expected the content of a Synapse signing key file: one line "ed25519 <key_id> <seed>", the seed being 43 base64 characters (32 bytes)',
        );
    }
    return { keyId: m[1], publicKey: unpaddedBase64(ed25519PublicKey(seed)), fileLine: `ed25519 ${m[1]} ${m[2]}\n` };
}
