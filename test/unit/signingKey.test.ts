import * as assert from "node:assert/strict";
import { generateKeyPairSync, sign, verify, createPublicKey } from "node:crypto";
import { ed25519PublicKeyFromOpenssh, parseSigningKeyFile, signingKeyFromPem, signingKeyIdFor } from "../../src/render/synapse/signingKey";

describe("signing key conversion", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }).toString();

    it("turns a PKCS#8 PEM into Synapse's one-line key file with an unpadded 43-character seed", () => {
        const k = signingKeyFromPem(pem);
        assert.match(k.fileLine, /^ed25519 a_[a-z]{4} [A-Za-z0-9+/]{43}\n$/);
        const der = privateKey.export({ format: "der", type: "pkcs8" });
        assert.equal(Buffer.from(k.fileLine.split(" ")[2].trim(), "base64").toString("hex"), der.subarray(der.length - 32).toString("hex"));
    });

    it("publishes the public key of the same key pair", () => {
        const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
        assert.equal(signingKeyFromPem(pem).publicKey, raw.toString("base64").replace(/=+$/, ""));
    });

    it("derives the same key id from the OpenSSH public key (what the component uses) as from the private key", () => {
        const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
        const len = (b: Buffer) => {
            const l = Buffer.alloc(4);
            l.writeUInt32BE(b.length);
            return Buffer.concat([l, b]);
        };
        const openssh = `ssh-ed25519 ${Buffer.concat([len(Buffer.from("ssh-ed25519")), len(raw)]).toString("base64")}`;
        assert.equal(signingKeyIdFor(ed25519PublicKeyFromOpenssh(openssh)), signingKeyFromPem(pem).keyId);
    });

    it("is stable for one key and differs for another", () => {
        assert.equal(signingKeyFromPem(pem).fileLine, signingKeyFromPem(pem).fileLine);
        const other = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString();
        assert.notEqual(signingKeyFromPem(other).fileLine, signingKeyFromPem(pem).fileLine);
    });

    it("imports an existing Synapse key file and signs like the original", () => {
        const line = signingKeyFromPem(pem).fileLine.replace(/ a_[a-z]{4} /, " a_Xyz9 ");
        const parsed = parseSigningKeyFile(`\n${line}`);
        assert.equal(parsed.keyId, "a_Xyz9");
        assert.equal(parsed.publicKey, signingKeyFromPem(pem).publicKey);
        const sig = sign(null, Buffer.from("event"), privateKey);
        const raw = Buffer.from(parsed.publicKey + "=", "base64");
        const pub = createPublicKey({ key: Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), raw]), format: "der", type: "spki" });
        assert.ok(verify(null, Buffer.from("event"), pub, sig));
    });

    it("refuses what is not a Synapse key line", () => {
        assert.throws(() => parseSigningKeyFile("ssh-ed25519 AAAA"), /signingKey is \[secret, not shown\]; expected the content of a Synapse signing key file/);
        assert.throws(
            () => signingKeyFromPem(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString()),
            /Ed25519/,
        );
    });
});
