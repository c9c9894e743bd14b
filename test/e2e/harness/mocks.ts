/**
 * Pulumi mocks that DO what the providers do on create, so the library's real
 * Pulumi program runs against a VM under `pulumi.runtime.setMocks`:
 *
 * - command:remote:Command      runs `create` over ssh (stdin piped), returns stdout/stderr
 * - command:remote:CopyToRemote copies a FileAsset / StringAsset / FileArchive with scp
 * - command:local:Command       runs `create` with /bin/sh -c locally
 * - random:index/*              real random values (RandomPassword, RandomString,
 *                               RandomBytes, RandomId, RandomUuid, RandomUuid4/7, RandomInteger)
 * - tls:index/privateKey        real keys (ED25519, RSA, ECDSA) in every output format
 * - anything else               inputs echoed as outputs, id `${name}-id`, recorded
 *
 * It is not an engine: there is no diff, update, replace or delete. Every run is
 * a fresh "create" of everything, except that random/tls values are reused from
 * the optional `state` map (keyed by type + name) so a second run sees the same
 * secrets, as a second `pulumi up` would.
 */
import * as pulumi from "@pulumi/pulumi";
import { AsyncLocalStorage } from "node:async_hooks";
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { RunResult, SshTarget, scpTo, shq, sshRun, withDialRetries } from "./ssh";

type MockResourceArgs = pulumi.runtime.MockResourceArgs;
type MockResourceResult = pulumi.runtime.MockResourceResult;
type MockCallArgs = pulumi.runtime.MockCallArgs;
type MockCallResult = pulumi.runtime.MockCallResult;

import { SECRET_SIG, SECRET_SIG_KEY, isPlainObject, isSecretWrapped, secretValue, unwrapSecrets } from "../../support/secrets";

export { SECRET_SIG, SECRET_SIG_KEY, isSecretWrapped, secretValue, unwrapSecrets };

// ---------------------------------------------------------------------------
// timeline

export interface TimelineEntry {
    type: string;
    name: string;
    urn: string;
    parentUrn?: string;
    custom: boolean;
    /** ms since epoch */
    start: number;
    end?: number;
    seconds?: number;
    ok?: boolean;
    error?: string;
}

export interface ComponentSummary {
    /** component URN */
    urn: string;
    type: string;
    name: string;
    /** custom resources below it (any depth) */
    resources: number;
    /** wall-clock seconds from the first start to the last end below it */
    seconds: number;
    /** sum of the custom resources' own seconds (> seconds when they ran in parallel) */
    busySeconds: number;
    failed: number;
}

interface RegistrationContext {
    urn: string;
    parentUrn?: string;
    custom: boolean;
}
const registration = new AsyncLocalStorage<RegistrationContext>();

function urnFor(parentUrn: string | undefined, type: string, name: string): string {
    let t = type;
    if (parentUrn) {
        const qualifiedType = parentUrn.split("::")[2];
        t = `${qualifiedType.split("$").pop()}$${type}`;
    }
    return `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${t}::${name}`;
}

// ---------------------------------------------------------------------------
// random

const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS = "0123456789";
const SPECIAL = "!@#$%&*()-_=+[]{}<>:?";

function pick(chars: string, n: number): string[] {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(chars[crypto.randomInt(chars.length)]);
    return out;
}

function shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
        const j = crypto.randomInt(i + 1);
        [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
}

function randomStringOutputs(inp: Record<string, any>): Record<string, any> {
    const length = Number(inp.length);
    if (!Number.isInteger(length) || length < 1) throw new Error(`length must be a positive integer, got ${inp.length}`);
    const upper = inp.upper ?? true;
    const lower = inp.lower ?? true;
    const numeric = inp.numeric ?? inp.number ?? true;
    const special = inp.special ?? true;
    const specials = inp.overrideSpecial !== undefined && inp.overrideSpecial !== null ? String(inp.overrideSpecial) : SPECIAL;
    const minUpper = Number(inp.minUpper ?? 0);
    const minLower = Number(inp.minLower ?? 0);
    const minNumeric = Number(inp.minNumeric ?? 0);
    const minSpecial = Number(inp.minSpecial ?? 0);
    const chars: string[] = [];
    let all = "";
    if (upper) {
        chars.push(...pick(UPPER, minUpper));
        all += UPPER;
    }
    if (lower) {
        chars.push(...pick(LOWER, minLower));
        all += LOWER;
    }
    if (numeric) {
        chars.push(...pick(DIGITS, minNumeric));
        all += DIGITS;
    }
    if (special && specials.length > 0) {
        chars.push(...pick(specials, minSpecial));
        all += specials;
    }
    if (all.length === 0) throw new Error("the character set is empty (upper, lower, numeric and special all false)");
    if (chars.length > length) throw new Error(`length ${length} is shorter than the sum of the min* counts (${chars.length})`);
    chars.push(...pick(all, length - chars.length));
    return {
        ...inp,
        length,
        upper,
        lower,
        numeric,
        number: numeric,
        special,
        minUpper,
        minLower,
        minNumeric,
        minSpecial,
        result: shuffle(chars).join(""),
    };
}

function uuid7(): string {
    const b = crypto.randomBytes(16);
    const ms = BigInt(Date.now());
    for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = b.toString("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------------------------------------------------------------------------
// tls keys

function sshString(b: Buffer | string): Buffer {
    const buf = Buffer.from(b);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    return Buffer.concat([len, buf]);
}

function sshMpint(b: Buffer): Buffer {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v.length > 0 && v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return sshString(v);
}

function u32(n: number): Buffer {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n >>> 0);
    return b;
}

const b64u = (s: string) => Buffer.from(s, "base64url");

interface SshKeyParts {
    type: string;
    publicBlob: Buffer;
    privateFields: Buffer;
}

function sshKeyParts(key: crypto.KeyObject): SshKeyParts | undefined {
    const jwk = key.export({ format: "jwk" }) as crypto.JsonWebKey;
    if (jwk.kty === "OKP" && jwk.crv === "Ed25519") {
        const pub = b64u(jwk.x!);
        const seed = b64u(jwk.d!);
        const type = "ssh-ed25519";
        return {
            type,
            publicBlob: Buffer.concat([sshString(type), sshString(pub)]),
            privateFields: Buffer.concat([sshString(type), sshString(pub), sshString(Buffer.concat([seed, pub]))]),
        };
    }
    if (jwk.kty === "RSA") {
        const type = "ssh-rsa";
        const [n, e, d, p, q, qi] = [jwk.n!, jwk.e!, jwk.d!, jwk.p!, jwk.q!, jwk.qi!].map(b64u);
        return {
            type,
            publicBlob: Buffer.concat([sshString(type), sshMpint(e), sshMpint(n)]),
            privateFields: Buffer.concat([sshString(type), sshMpint(n), sshMpint(e), sshMpint(d), sshMpint(qi), sshMpint(p), sshMpint(q)]),
        };
    }
    if (jwk.kty === "EC") {
        const curve = ({ "P-256": "nistp256", "P-384": "nistp384", "P-521": "nistp521" } as Record<string, string>)[jwk.crv!];
        if (!curve) return undefined; // P-224 has no OpenSSH form
        const type = `ecdsa-sha2-${curve}`;
        const q = Buffer.concat([Buffer.from([4]), b64u(jwk.x!), b64u(jwk.y!)]);
        return {
            type,
            publicBlob: Buffer.concat([sshString(type), sshString(curve), sshString(q)]),
            privateFields: Buffer.concat([sshString(type), sshString(curve), sshString(q), sshMpint(b64u(jwk.d!))]),
        };
    }
    return undefined;
}

function opensshPrivateKey(parts: SshKeyParts): string {
    const check = crypto.randomBytes(4);
    let priv = Buffer.concat([check, check, parts.privateFields, sshString("")]);
    const pad: number[] = [];
    for (let i = 1; (priv.length + pad.length) % 8 !== 0; i++) pad.push(i);
    priv = Buffer.concat([priv, Buffer.from(pad)]);
    const body = Buffer.concat([
        Buffer.from("openssh-key-v1\0", "binary"),
        sshString("none"),
        sshString("none"),
        sshString(""),
        u32(1),
        sshString(parts.publicBlob),
        sshString(priv),
    ]);
    const b64 = body
        .toString("base64")
        .replace(/(.{70})/g, "$1\n")
        .replace(/\n$/, "");
    return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

function tlsPrivateKeyOutputs(inp: Record<string, any>): Record<string, any> {
    const algorithm = String(inp.algorithm ?? "RSA").toUpperCase();
    let pair: crypto.KeyPairKeyObjectResult;
    let pemType: "pkcs1" | "sec1" | "pkcs8";
    const out: Record<string, any> = { ...inp, algorithm };
    if (algorithm === "ED25519") {
        pair = crypto.generateKeyPairSync("ed25519");
        pemType = "pkcs8";
    } else if (algorithm === "RSA") {
        const bits = Number(inp.rsaBits ?? 2048);
        pair = crypto.generateKeyPairSync("rsa", { modulusLength: bits });
        pemType = "pkcs1";
        out.rsaBits = bits;
    } else if (algorithm === "ECDSA") {
        const curve = String(inp.ecdsaCurve ?? "P224").toUpperCase();
        const named = ({ P224: "P-224", P256: "P-256", P384: "P-384", P521: "P-521" } as Record<string, string>)[curve];
        if (!named) throw new Error(`unsupported ecdsaCurve ${curve}`);
        pair = crypto.generateKeyPairSync("ec", { namedCurve: named });
        pemType = "sec1";
        out.ecdsaCurve = curve;
    } else {
        throw new Error(`unsupported tls.PrivateKey algorithm ${algorithm}`);
    }
    const privateKeyPem = pair.privateKey.export({ format: "pem", type: pemType }) as string;
    const privateKeyPemPkcs8 = pair.privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    const publicKeyPem = pair.publicKey.export({ format: "pem", type: "spki" }) as string;
    const parts = sshKeyParts(pair.privateKey);
    let privateKeyOpenssh = "";
    let publicKeyOpenssh = "";
    let md5 = "";
    let sha256 = "";
    if (parts) {
        privateKeyOpenssh = opensshPrivateKey(parts);
        publicKeyOpenssh = `${parts.type} ${parts.publicBlob.toString("base64")}\n`;
        md5 = crypto
            .createHash("md5")
            .update(parts.publicBlob)
            .digest("hex")
            .replace(/(..)(?!$)/g, "$1:");
        sha256 = "SHA256:" + crypto.createHash("sha256").update(parts.publicBlob).digest("base64").replace(/=+$/, "");
    }
    return {
        ...out,
        privateKeyPem: secretValue(privateKeyPem),
        privateKeyPemPkcs8: secretValue(privateKeyPemPkcs8),
        privateKeyOpenssh: secretValue(privateKeyOpenssh),
        publicKeyPem,
        publicKeyOpenssh,
        publicKeyFingerprintMd5: md5,
        publicKeyFingerprintSha256: sha256,
    };
}

// ---------------------------------------------------------------------------
// commands

/** Strips one trailing newline (the command provider does the same). */
function trimNl(s: string): string {
    return s.replace(/\r?\n$/, "");
}

function lastLines(s: string, n: number): string {
    const lines = s.replace(/\n+$/, "").split("\n");
    return lines.slice(-n).join("\n");
}

function toTarget(conn: Record<string, any>): SshTarget {
    if (!conn || !conn.host) throw new Error("connection.host is required");
    if (conn.password && !conn.privateKey) throw new Error("password authentication is not supported by the mocks (use privateKey)");
    if (!conn.privateKey) throw new Error("connection.privateKey is required by the mocks (no agent support)");
    const t: SshTarget = {
        host: String(conn.host),
        port: Number(conn.port ?? 22),
        user: String(conn.user ?? "root"),
        privateKey: String(conn.privateKey),
        hostKey: conn.hostKey ? String(conn.hostKey) : undefined,
        connectTimeoutSec: Number(conn.perDialTimeout ?? 15) || 15,
    };
    if (conn.proxy) t.proxy = toTarget(conn.proxy);
    return t;
}

function dialLimit(conn: Record<string, any>): { dialErrorLimit: number; maxTotalMs: number } {
    const limit = Number(conn?.dialErrorLimit ?? 10);
    const per = Number(conn?.perDialTimeout ?? 15) || 15;
    // unlimited: 5 minutes; otherwise what the attempts can take, at most 5 minutes
    const maxTotalMs = limit < 0 ? 5 * 60_000 : Math.min(5 * 60_000, Math.max(1, limit) * (per + 2) * 1000);
    return { dialErrorLimit: limit, maxTotalMs };
}

async function assetValue(v: any, field: string): Promise<string | undefined> {
    if (v === undefined || v === null) return undefined;
    const x = await v[field];
    return x === undefined || x === null ? undefined : String(x);
}

// ---------------------------------------------------------------------------

export type ResourceHandler = (
    args: MockResourceArgs,
    ctx: { urn: string; inputs: Record<string, any> },
) => Promise<MockResourceResult | undefined> | MockResourceResult | undefined;

export interface ExecutingMocksOptions {
    /**
     * Outputs kept between runs, keyed by `${type}::${name}`. random and tls
     * resources reuse stored outputs; commands always run again.
     */
    state?: Map<string, Record<string, any>>;
    /** progress lines (command start/end, failures); default: none */
    log?: (s: string) => void;
    /** per-type handlers tried first; return undefined to fall through */
    overrides?: Record<string, ResourceHandler>;
    /** invokes (functions); default returns {} */
    call?: (args: MockCallArgs) => MockCallResult | Promise<MockCallResult>;
    /** bound for one remote/local command, default 30 minutes */
    commandTimeoutMs?: number;
}

export interface RecordedResource {
    type: string;
    name: string;
    urn: string;
    /** inputs with secrets unwrapped */
    inputs: Record<string, any>;
    /** names of inputs that arrived marked secret */
    secretInputs: string[];
    outputs?: Record<string, any>;
}

/** Key of a resource in the `state` map. */
export function stateKey(type: string, name: string): string {
    return `${type}::${name}`;
}

const REUSED_TYPES = new Set([
    "random:index/randomPassword:RandomPassword",
    "random:index/randomString:RandomString",
    "random:index/randomBytes:RandomBytes",
    "random:index/randomId:RandomId",
    "random:index/randomUuid:RandomUuid",
    "random:index/randomUuid4:RandomUuid4",
    "random:index/randomUuid7:RandomUuid7",
    "random:index/randomInteger:RandomInteger",
    "tls:index/privateKey:PrivateKey",
]);

export class ExecutingMocks implements pulumi.runtime.Mocks {
    readonly state: Map<string, Record<string, any>>;
    /** every resource registered, in registration order */
    readonly resources: RecordedResource[] = [];
    /** errors thrown by newResource (the failed resources) */
    readonly failures: Error[] = [];
    private readonly entries: TimelineEntry[] = [];
    private readonly opts: ExecutingMocksOptions;
    private readonly log: (s: string) => void;

    constructor(opts: ExecutingMocksOptions = {}) {
        this.opts = opts;
        this.state = opts.state ?? new Map();
        this.log = opts.log ?? (() => {});
    }

    /** Wraps the current mock monitor so each newResource knows its URN and parent. Called by runProgram. */
    attach(): void {
        const monitor = (pulumi.runtime as any).getMonitor?.();
        if (!monitor || monitor.__harnessWrapped) return;
        for (const method of ["registerResource", "readResource"]) {
            const orig = monitor[method].bind(monitor);
            monitor[method] = (req: any, cb: any) => {
                const parentUrn = req.getParent() || undefined;
                const ctx: RegistrationContext = {
                    urn: urnFor(parentUrn, req.getType(), req.getName()),
                    parentUrn,
                    custom: method === "readResource" ? true : req.getCustom(),
                };
                return registration.run(ctx, () => orig(req, cb));
            };
        }
        monitor.__harnessWrapped = true;
    }

    call(args: MockCallArgs): MockCallResult | Promise<MockCallResult> {
        if (this.opts.call) return this.opts.call(args);
        return {};
    }

    async newResource(args: MockResourceArgs): Promise<MockResourceResult> {
        const ctx = registration.getStore();
        const urn = ctx?.urn ?? urnFor(undefined, args.type, args.name);
        const entry: TimelineEntry = {
            type: args.type,
            name: args.name,
            urn,
            parentUrn: ctx?.parentUrn,
            custom: ctx?.custom ?? args.custom ?? true,
            start: Date.now(),
        };
        this.entries.push(entry);
        const raw = (args.inputs ?? {}) as Record<string, any>;
        const inputs = unwrapSecrets<Record<string, any>>(raw);
        const rec: RecordedResource = {
            type: args.type,
            name: args.name,
            urn,
            inputs,
            secretInputs: Object.keys(raw).filter((k) => isSecretWrapped(raw[k])),
        };
        this.resources.push(rec);
        try {
            const res = await this.dispatch(args, urn, raw, inputs);
            rec.outputs = res.state;
            entry.ok = true;
            return res;
        } catch (e: any) {
            entry.ok = false;
            entry.error = e?.message ?? String(e);
            const err = e instanceof Error ? e : new Error(String(e));
            this.failures.push(err);
            this.log(`FAILED ${args.type} ${args.name}: ${err.message.split("\n")[0]}`);
            throw err;
        } finally {
            entry.end = Date.now();
            entry.seconds = (entry.end - entry.start) / 1000;
        }
    }

    private async dispatch(args: MockResourceArgs, urn: string, raw: Record<string, any>, inputs: Record<string, any>): Promise<MockResourceResult> {
        const id = `${args.name}-id`;
        const override = this.opts.overrides?.[args.type];
        if (override) {
            const r = await override(args, { urn, inputs });
            if (r) return r;
        }
        const key = stateKey(args.type, args.name);
        if (REUSED_TYPES.has(args.type)) {
            const stored = this.state.get(key);
            if (stored) return { id, state: stored };
            const outputs = this.create(args.type, inputs);
            this.state.set(key, outputs);
            return { id, state: outputs };
        }
        let state: Record<string, any>;
        switch (args.type) {
            case "command:remote:Command":
                state = await this.remoteCommand(args.name, urn, raw, inputs);
                break;
            case "command:remote:CopyToRemote":
                state = await this.copyToRemote(args.name, urn, raw, inputs);
                break;
            case "command:local:Command":
                state = await this.localCommand(args.name, urn, raw, inputs);
                break;
            default:
                return { id: args.custom === false ? undefined : id, state: raw };
        }
        // recorded for inspection; commands run again on the next run regardless
        this.state.set(key, state);
        return { id, state };
    }

    private create(type: string, inp: Record<string, any>): Record<string, any> {
        switch (type) {
            case "random:index/randomPassword:RandomPassword": {
                const o = randomStringOutputs(inp);
                // bcryptHash is not computed (no bcrypt in node:crypto)
                return { ...o, result: secretValue(o.result) };
            }
            case "random:index/randomString:RandomString":
                return randomStringOutputs(inp);
            case "random:index/randomBytes:RandomBytes": {
                const b = crypto.randomBytes(Number(inp.length));
                return { ...inp, base64: secretValue(b.toString("base64")), hex: secretValue(b.toString("hex")) };
            }
            case "random:index/randomId:RandomId": {
                const b = crypto.randomBytes(Number(inp.byteLength));
                const prefix = inp.prefix ?? "";
                return {
                    ...inp,
                    hex: prefix + b.toString("hex"),
                    b64Std: prefix + b.toString("base64"),
                    b64Url: prefix + b.toString("base64url"),
                    dec: prefix + BigInt("0x" + (b.toString("hex") || "0")).toString(10),
                };
            }
            case "random:index/randomUuid:RandomUuid":
            case "random:index/randomUuid4:RandomUuid4":
                return { ...inp, result: crypto.randomUUID() };
            case "random:index/randomUuid7:RandomUuid7":
                return { ...inp, result: uuid7() };
            case "random:index/randomInteger:RandomInteger": {
                const min = Number(inp.min);
                const max = Number(inp.max);
                if (!(max >= min)) throw new Error(`random integer: max ${max} < min ${min}`);
                return { ...inp, result: min + crypto.randomInt(max - min + 1) };
            }
            case "tls:index/privateKey:PrivateKey":
                return tlsPrivateKeyOutputs(inp);
        }
        throw new Error(`no generator for ${type}`);
    }

    private outputWithheld(raw: Record<string, any>, inputs: Record<string, any>): boolean {
        if (inputs.logging === "none") return true;
        return ["create", "stdin", "update", "delete"].some((k) => isSecretWrapped(raw[k]));
    }

    private failure(kind: string, name: string, urn: string, r: RunResult, withheld: boolean, what: string): Error {
        const head = `${kind} "${name}" (${urn}) failed: ${what} exited with code ${r.code}${r.signal ? ` (signal ${r.signal})` : ""}`;
        if (withheld) return new Error(`${head}\n(output withheld: logging "none" or secret inputs)`);
        const out = lastLines(
            [r.stderr, r.stdout]
                .map((s) => s.replace(/\s+$/, ""))
                .filter((s) => s.length > 0)
                .join("\n"),
            40,
        );
        return new Error(`${head}\n--- last 40 lines of stderr+stdout ---\n${out}`);
    }

    private async remoteCommand(name: string, urn: string, raw: Record<string, any>, inputs: Record<string, any>): Promise<Record<string, any>> {
        const env = inputs.environment;
        if (env && typeof env === "object" && Object.keys(env).length > 0) {
            throw new Error(
                `remote.Command "${name}" (${urn}) sets environment (${Object.keys(env).join(", ")}): components must not rely on it ` +
                    `(sshd's AcceptEnv usually drops it); pass values on stdin or in the script`,
            );
        }
        const create = inputs.create;
        if (create === undefined || create === null || create === "") return { ...raw, stdout: "", stderr: "" };
        const target = toTarget(inputs.connection);
        const started = Date.now();
        this.log(`run  ${name}`);
        const r = await withDialRetries(
            () => sshRun(target, String(create), { stdin: inputs.stdin ?? undefined, timeoutMs: this.opts.commandTimeoutMs ?? 30 * 60_000 }),
            dialLimit(inputs.connection),
        );
        const secs = ((Date.now() - started) / 1000).toFixed(1);
        if (r.code !== 0) throw this.failure("remote.Command", name, urn, r, this.outputWithheld(raw, inputs), "command");
        this.log(`done ${name} (${secs}s)`);
        return { ...raw, stdout: trimNl(r.stdout), stderr: trimNl(r.stderr) };
    }

    private async copyToRemote(name: string, urn: string, raw: Record<string, any>, inputs: Record<string, any>): Promise<Record<string, any>> {
        const target = toTarget(inputs.connection);
        const remotePath = String(inputs.remotePath ?? "");
        if (!remotePath) throw new Error(`CopyToRemote "${name}": remotePath is required`);
        const src = inputs.source;
        const filePath = await assetValue(src, "path");
        const text = await assetValue(src, "text");
        const isArchive = src instanceof pulumi.asset.Archive || (src && typeof src === "object" && "assets" in src);
        if ((await assetValue(src, "uri")) !== undefined) throw new Error(`CopyToRemote "${name}": remote assets/archives are not supported`);
        if (isArchive && filePath === undefined) throw new Error(`CopyToRemote "${name}": only FileArchive is supported, not AssetArchive`);
        const started = Date.now();
        this.log(`copy ${name} -> ${remotePath}`);
        const retry = dialLimit(inputs.connection);
        // parent directories are created, like the provider does
        const parent = path.posix.dirname(remotePath);
        let r = await withDialRetries(() => sshRun(target, `mkdir -p ${shq(parent)}`, { timeoutMs: 120_000 }), retry);
        if (r.code !== 0) throw this.failure("CopyToRemote", name, urn, r, false, `mkdir -p ${parent}`);
        if (text !== undefined) {
            r = await withDialRetries(
                () =>
                    sshRun(target, `if [ -d ${shq(remotePath)} ]; then echo "${remotePath} is a directory" >&2; exit 1; fi; cat > ${shq(remotePath)}`, {
                        stdin: text,
                        timeoutMs: 600_000,
                    }),
                retry,
            );
            if (r.code !== 0) throw this.failure("CopyToRemote", name, urn, r, true, "writing the string asset");
        } else if (filePath !== undefined) {
            const local = path.resolve(filePath);
            const st = fs.statSync(local);
            r = await withDialRetries(() => scpTo(target, local, remotePath, { recursive: st.isDirectory(), timeoutMs: 1_800_000 }), retry);
            if (r.code !== 0) throw this.failure("CopyToRemote", name, urn, r, false, "scp");
        } else {
            throw new Error(`CopyToRemote "${name}": unsupported source ${JSON.stringify(src)}`);
        }
        this.log(`done ${name} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
        return { ...raw };
    }

    private async localCommand(name: string, urn: string, raw: Record<string, any>, inputs: Record<string, any>): Promise<Record<string, any>> {
        const create = inputs.create;
        if (create === undefined || create === null || create === "") return { ...raw, stdout: "", stderr: "" };
        const interpreter: string[] = Array.isArray(inputs.interpreter) && inputs.interpreter.length > 0 ? inputs.interpreter.map(String) : ["/bin/sh", "-c"];
        const env = { ...process.env, ...(inputs.environment ?? {}) } as NodeJS.ProcessEnv;
        const started = Date.now();
        this.log(`run  ${name} (local)`);
        const r = await new Promise<RunResult>((resolve, reject) => {
            const child = spawn(interpreter[0], [...interpreter.slice(1), String(create)], {
                cwd: inputs.dir ? String(inputs.dir) : undefined,
                env,
                stdio: [inputs.stdin === undefined || inputs.stdin === null ? "ignore" : "pipe", "pipe", "pipe"],
            });
            const out: Buffer[] = [];
            const err: Buffer[] = [];
            const timer = setTimeout(() => child.kill("SIGKILL"), this.opts.commandTimeoutMs ?? 30 * 60_000);
            child.stdout!.on("data", (b: Buffer) => out.push(b));
            child.stderr!.on("data", (b: Buffer) => err.push(b));
            child.on("error", reject);
            if (child.stdin) {
                child.stdin.on("error", () => {});
                child.stdin.end(String(inputs.stdin));
            }
            child.on("close", (code, signal) => {
                clearTimeout(timer);
                resolve({ code: code ?? 255, signal: signal ?? undefined, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
            });
        });
        if (r.code !== 0) throw this.failure("local.Command", name, urn, r, this.outputWithheld(raw, inputs), "command");
        this.log(`done ${name} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
        return { ...raw, stdout: trimNl(r.stdout), stderr: trimNl(r.stderr) };
    }

    /** Every registration with start/end times, in start order. */
    timings(): TimelineEntry[] {
        return [...this.entries].sort((a, b) => a.start - b.start);
    }

    /**
     * Seconds per component: for each component resource (and the root, as
     * "(no parent)"), the custom resources below it at any depth.
     */
    summary(): ComponentSummary[] {
        const byUrn = new Map(this.entries.map((e) => [e.urn, e]));
        const groups = new Map<string, { type: string; name: string; items: TimelineEntry[] }>();
        for (const e of this.entries) {
            if (!e.custom) continue;
            const seen = new Set<string>();
            let p = e.parentUrn;
            let any = false;
            while (p && !seen.has(p)) {
                seen.add(p);
                const parent = byUrn.get(p);
                const type = parent?.type ?? p.split("::")[2]?.split("$").pop() ?? "?";
                const name = parent?.name ?? p.split("::").pop() ?? p;
                if (!groups.has(p)) groups.set(p, { type, name, items: [] });
                groups.get(p)!.items.push(e);
                any = true;
                p = parent?.parentUrn;
            }
            if (!any) {
                if (!groups.has("")) groups.set("", { type: "", name: "(no parent)", items: [] });
                groups.get("")!.items.push(e);
            }
        }
        const out: ComponentSummary[] = [];
        for (const [urn, g] of groups) {
            const start = Math.min(...g.items.map((i) => i.start));
            const end = Math.max(...g.items.map((i) => i.end ?? Date.now()));
            out.push({
                urn,
                type: g.type,
                name: g.name,
                resources: g.items.length,
                seconds: Math.round((end - start) / 100) / 10,
                busySeconds: Math.round(g.items.reduce((s, i) => s + (i.seconds ?? 0), 0) * 10) / 10,
                failed: g.items.filter((i) => i.ok === false).length,
            });
        }
        return out.sort((a, b) => b.seconds - a.seconds);
    }

    /** summary() as a small table. */
    summaryText(): string {
        const rows = this.summary().map(
            (s) =>
                `${s.seconds.toFixed(1).padStart(8)}s ${s.busySeconds.toFixed(1).padStart(8)}s ${String(s.resources).padStart(4)}  ${s.name} [${s.type}]${s.failed ? ` (${s.failed} failed)` : ""}`,
        );
        return ["    wall     busy  res  component", ...rows].join("\n");
    }
}

// ---------------------------------------------------------------------------

/** Resolves an Output (or plain value) to its value; rejects when it failed. */
export function settle<T>(v: pulumi.Input<T>): Promise<T> {
    return (pulumi.output(v) as any).promise() as Promise<T>;
}

function collectOutputs(v: unknown, acc: Promise<unknown>[], seen: Set<unknown>, depth = 0): void {
    if (v === null || typeof v !== "object" || seen.has(v) || depth > 20) return;
    seen.add(v);
    if (pulumi.Output.isInstance(v)) {
        acc.push(settle(v));
        return;
    }
    if (pulumi.Resource.isInstance(v)) return;
    if (Array.isArray(v)) v.forEach((x) => collectOutputs(x, acc, seen, depth + 1));
    else if (isPlainObject(v)) Object.values(v).forEach((x) => collectOutputs(x, acc, seen, depth + 1));
}

export interface RunProgramOptions {
    project?: string;
    stack?: string;
}

/**
 * Runs a Pulumi program under `mocks` (preview=false) and waits until every
 * resource registration finished and every Output in the returned value
 * settled. Rejects with the failures (failed resources first) instead of
 * leaving unhandled rejections behind.
 */
export async function runProgram<T>(program: () => T | Promise<T>, mocks: ExecutingMocks, opts: RunProgramOptions = {}): Promise<T> {
    // the mock monitor is process-global: one program at a time
    if (programRunning) throw new Error("runProgram: another program is still running in this process (the Pulumi runtime is global)");
    programRunning = true;
    try {
        return await runProgramOnce(program, mocks, opts);
    } finally {
        programRunning = false;
    }
}

let programRunning = false;

async function runProgramOnce<T>(program: () => T | Promise<T>, mocks: ExecutingMocks, opts: RunProgramOptions): Promise<T> {
    await pulumi.runtime.setMocks(mocks, opts.project ?? "project", opts.stack ?? "stack", false);
    mocks.attach();
    const failuresBefore = mocks.failures.length;
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => {
        if (!rejections.includes(reason)) rejections.push(reason);
    };
    process.on("unhandledRejection", onRejection);
    try {
        let result: T | undefined;
        let programError: unknown;
        try {
            result = await program();
        } catch (e) {
            programError = e;
        }
        await (pulumi.runtime as any).waitForRPCs();
        const pending: Promise<unknown>[] = [];
        if (programError === undefined) collectOutputs(result, pending, new Set());
        const settled = await Promise.allSettled(pending);
        await (pulumi.runtime as any).waitForRPCs();
        // let late rejections surface before the listener goes away
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setTimeout(r, 10));

        const failures = mocks.failures.slice(failuresBefore);
        const errors: unknown[] = [];
        if (programError !== undefined) errors.push(programError);
        errors.push(...failures);
        for (const s of settled) if (s.status === "rejected") errors.push(s.reason);
        errors.push(...rejections);
        if (errors.length > 0) {
            const msgs: string[] = [];
            for (const e of errors) {
                const m = e instanceof Error ? e.message : String(e);
                // the SDK wraps a failed registration as "failed to register new resource X [T]: <our message>"
                if (!msgs.some((x) => x === m || x.includes(m) || m.includes(x))) msgs.push(m);
            }
            const primary = failures[0] ?? errors[0];
            const err = new Error(`Pulumi program failed (${failures.length} resource(s) failed):\n\n${msgs.join("\n\n")}`) as Error & {
                errors: unknown[];
                cause?: unknown;
            };
            err.errors = errors;
            err.cause = primary;
            throw err;
        }
        return result as T;
    } finally {
        process.off("unhandledRejection", onRejection);
    }
}
