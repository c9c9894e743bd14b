import { createHash, createPrivateKey, createPublicKey } from "node:crypto";

import * as pulumi from "@pulumi/pulumi";

import { ADOPTED_KEY_PREFIX } from "../../../src/provision/adopt";
import { isSecretWrapped, unwrapSecrets } from "../secrets";

export interface RecordedResource {
    type: string;
    name: string;
    /** Inputs with secret wrappers removed. */
    inputs: Record<string, unknown>;
    /** Names of the inputs that arrived marked secret (anywhere inside). */
    secretInputs: string[];
    /** Inputs as the engine would receive them, secret wrappers included. */
    rawInputs: Record<string, unknown>;
    /** Order in which the mock saw the resource. */
    seq: number;
    /** The id of an existing resource it imports (Pulumi's `import` option), if any. */
    importId?: string;
}

/** Whether a value holds a secret-wrapped part anywhere inside it. */
function hasSecret(v: unknown): boolean {
    if (isSecretWrapped(v)) return true;
    if (Array.isArray(v)) return v.some(hasSecret);
    return !!v && typeof v === "object" && Object.values(v).some(hasSecret);
}

/**
 * Pulumi mocks for unit tests: deterministic fake values (random results
 * carry a recognisable SECRET marker so tests can look for leaks), real
 * Ed25519 keys for tls.PrivateKey (derived from the resource name, so two
 * runs agree), canned stdout for the host probe.
 */
export class RecordingMocks implements pulumi.runtime.Mocks {
    readonly resources: RecordedResource[] = [];
    osRelease = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nARCH=amd64';

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        const inputs = unwrapSecrets<Record<string, unknown>>(args.inputs);
        const secretInputs = Object.entries(args.inputs)
            .filter(([, v]) => hasSecret(v))
            .map(([k]) => k);
        this.resources.push({
            type: args.type,
            name: args.name,
            inputs,
            secretInputs,
            rawInputs: args.inputs,
            seq: this.resources.length,
            ...(args.id ? { importId: args.id } : {}),
        });
        const state: Record<string, unknown> = { ...inputs };
        switch (args.type) {
            case "random:index/randomPassword:RandomPassword":
                state.result = `SECRET${createHash("sha256").update(args.name).digest("hex").slice(0, 24)}`;
                break;
            case "tls:index/privateKey:PrivateKey": {
                const seed = createHash("sha256").update(args.name).digest();
                const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
                const priv = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
                const pubRaw = createPublicKey(priv).export({ format: "der", type: "spki" }).subarray(12);
                const blob = Buffer.concat([u32str("ssh-ed25519"), u32buf(pubRaw)]);
                state.privateKeyPem = priv.export({ format: "pem", type: "pkcs8" });
                state.publicKeyOpenssh = `ssh-ed25519 ${blob.toString("base64")}\n`;
                break;
            }
            case "random:index/randomBytes:RandomBytes":
                state.base64 = createHash("sha256")
                    .update(args.name)
                    .digest()
                    .subarray(0, Number(inputs.length ?? 32))
                    .toString("base64");
                break;
            case "tls:index/certRequest:CertRequest":
                state.certRequestPem = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(args.name).toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
                break;
            case "tls:index/selfSignedCert:SelfSignedCert":
            case "tls:index/locallySignedCert:LocallySignedCert":
                // A stand-in PEM named after the resource: tests see which certificate went where.
                state.certPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(args.name).toString("base64")}\n-----END CERTIFICATE-----\n`;
                break;
            case "command:remote:Command":
                state.stdout = String(inputs.create ?? "").includes("os-release") ? this.osRelease : "";
                // An adoption's preflight hands back the host's key (a fixed test key) on its stdout.
                if (String(inputs.stdin ?? "").includes("# pulumi-matrix adoption preflight")) state.stdout = `${ADOPTED_KEY_PREFIX}${ADOPTED_TEST_KEY}\n`;
                state.stderr = "";
                break;
        }
        // An imported resource keeps the id it has (a Cloudflare record's is the part after the zone's).
        return { id: args.id ? args.id.slice(args.id.lastIndexOf("/") + 1) : `${args.name}-id`, state };
    }

    /** Zones `cloudflare.getZone` finds, name -> id. */
    zones: Record<string, string> = { "example.com": "023e105f4ecef8ad9ca31a8372d0c353" };
    /** Every invoke the program made, in order. */
    readonly calls: pulumi.runtime.MockCallArgs[] = [];

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        this.calls.push(args);
        if (args.token === "cloudflare:index/getZone:getZone") return this.zone(args.inputs);
        return args.inputs;
    }

    /** A zone looked up by `filter.name` or by `zoneId`, as the provider answers (an unknown zone is an error, as there). */
    private zone(inputs: Record<string, unknown>): Record<string, unknown> {
        const byName = (inputs.filter as { name?: string } | undefined)?.name;
        const name = byName ?? Object.keys(this.zones).find((n) => this.zones[n] === inputs.zoneId);
        const id = name !== undefined ? this.zones[name] : undefined;
        if (name === undefined || id === undefined) throw new Error(`no zone matches ${JSON.stringify(inputs)}`);
        return { ...inputs, id, zoneId: id, name, status: "active" };
    }

    byName(name: string): RecordedResource {
        const r = this.resources.find((x) => x.name === name);
        if (!r) throw new Error(`no resource named ${name}; have ${this.resources.map((x) => x.name).join(", ")}`);
        return r;
    }
}

function u32buf(b: Buffer): Buffer {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
}
function u32str(s: string): Buffer {
    return u32buf(Buffer.from(s));
}

/** Resolves an Output's value (including secret ones) in a test. */
export function valueOf<T>(o: pulumi.Output<T>): Promise<T> {
    // Output's own promise also rejects when an apply threw (a validation error).
    return (o as unknown as { promise(): Promise<T> }).promise();
}

/**
 * Runs a program under fresh mocks and waits until every resource it
 * declared reached the mock. Returns the mocks with the recorded resources.
 */
export async function runWithMocks<T>(program: () => T, settle: (t: T) => pulumi.Output<unknown>[] = () => []): Promise<{ mocks: RecordingMocks; result: T }> {
    const mocks = new RecordingMocks();
    await pulumi.runtime.setMocks(mocks, "matrix", "test", false);
    const result = program();
    await Promise.all(settle(result).map(valueOf));
    // Let registrations that nothing awaited (e.g. commands depending on the ones above) finish.
    let last = -1,
        stable = 0;
    for (let i = 0; i < 500 && stable < 10; i++) {
        stable = mocks.resources.length === last ? stable + 1 : 0;
        last = mocks.resources.length;
        await new Promise((r) => setTimeout(r, 10));
    }
    return { mocks, result };
}

/** The signing key an adoption's preflight reports under mocks (a test key, not a secret of anyone's). */
export const ADOPTED_TEST_KEY = "ed25519 a_adpt dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzISE";
