// The MatrixRTC back end's programs and a call participant for the
// integration suite:
//
//   matrixRtcBinaries()  livekit-server and lk-jwt-service: in $MATRIXRTC_BIN,
//                        else built from Go by ../shared/matrixrtc/build.sh
//                        where this workplace has it (cached, ~4 min cold),
//                        else found on PATH
//   rtcClient()          the LiveKit test client (rtc-client/, Go, the
//                        server SDK over WebRTC), built by scripts/rtc-client.sh
//   joinCall()           runs it: publishes Opus and VP8 tracks, or counts the
//                        RTP packets it receives per remote participant
//   serveRtcReleases()   both programs served as their projects' release files
//   livekitToken()       a LiveKit access token (HS256 JWT) minted here, as
//                        lk-jwt-service mints them, for tests of the SFU alone

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

import { RTC_DEFAULTS, type RtcRelease } from "../../../src/model/rtc";
import { serveFiles } from "./fileServer";
import { makeTempDir, run, type RunResult } from "./processes";

const ROOT = path.resolve(__dirname, "..", "..", "..");
export const RTC_CLIENT_SCRIPT = path.join(ROOT, "scripts", "rtc-client.sh");
/** The shared build of the MatrixRTC programs, beside the repository as CI lays it out. */
export const MATRIXRTC_BUILD_SCRIPT = path.resolve(ROOT, "..", "shared", "matrixrtc", "build.sh");

export interface MatrixRtcBinaries {
    readonly livekitServer: string;
    readonly lkJwtService: string;
}

let binaries: Promise<MatrixRtcBinaries> | undefined;

/** livekit-server and lk-jwt-service: from $MATRIXRTC_BIN (what `build.sh --env` exports), else the shared build script when it is there, else PATH. */
export function matrixRtcBinaries(): Promise<MatrixRtcBinaries> {
    binaries ??= (async () => {
        let dirs: string[];
        if (process.env.MATRIXRTC_BIN) {
            dirs = [process.env.MATRIXRTC_BIN];
        } else if (fs.existsSync(MATRIXRTC_BUILD_SCRIPT)) {
            const r = await run("bash", [MATRIXRTC_BUILD_SCRIPT], { timeoutMs: 20 * 60_000 });
            const bin = r.stdout.trim().split("\n").pop() ?? "";
            if (!bin.startsWith("/")) throw new Error(`${MATRIXRTC_BUILD_SCRIPT} printed no directory:\n${r.stdout}\n${r.stderr}`);
            dirs = [bin];
        } else {
            dirs = (process.env.PATH ?? "").split(":").filter(Boolean);
        }
        const find = (name: string): string => {
            for (const d of dirs) if (fs.existsSync(path.join(d, name))) return path.join(d, name);
            throw new Error(`${name} not found (neither ${MATRIXRTC_BUILD_SCRIPT} nor PATH has it)`);
        };
        return { livekitServer: find("livekit-server"), lkJwtService: find("lk-jwt-service") };
    })();
    binaries.catch(() => (binaries = undefined));
    return binaries;
}

let client: Promise<string> | undefined;

/** The test client's binary (built once per content of its sources, ~3 min cold). */
export function rtcClient(): Promise<string> {
    client ??= run("bash", [RTC_CLIENT_SCRIPT], { timeoutMs: 20 * 60_000 }).then((r) => {
        const bin = r.stdout.trim().split("\n").pop() ?? "";
        if (!bin.startsWith("/")) throw new Error(`rtc-client.sh printed no path:\n${r.stdout}\n${r.stderr}`);
        return bin;
    });
    client.catch(() => (client = undefined));
    return client;
}

/** What one participant received from another (RTP packets by kind, and the codecs' MIME types). */
export interface ReceivedMedia {
    readonly audio: number;
    readonly video: number;
    readonly codecs: string[];
}

/** The client's report (its last line of stdout). */
export interface CallReport {
    readonly identity?: string;
    readonly room?: string;
    /** publish: the MIME types of the tracks it sent. */
    readonly published?: string[];
    /** subscribe: by remote participant identity. */
    readonly participants: Record<string, ReceivedMedia>;
    /** Why it could not join (the client exited with status 2). */
    readonly error?: string;
}

export interface JoinOptions {
    readonly mode: "publish" | "subscribe";
    /** The SFU's WebSocket URL (ws:// or wss://, as lk-jwt-service hands it out). */
    readonly url: string;
    /** A LiveKit access token; written to a file only the client reads, never on its command line. */
    readonly token: string;
    /** publish: how long to send; subscribe: how long at most to listen. */
    readonly seconds: number;
    /** subscribe: stop early once `from` participants (default 1) each sent this many audio and video packets. */
    readonly until?: { audio: number; video: number; from?: number };
    /** Reach the SFU only through the TURN servers it hands out (ICE transport policy "relay"). */
    readonly relay?: boolean;
    /** Wraps the command (e.g. `ip netns exec NS`). */
    readonly prefix?: readonly string[];
    /** Added to the client's environment (SSL_CERT_FILE: the CA bundle a wss:// URL's certificate is checked against). */
    readonly env?: Record<string, string>;
}

export interface JoinResult {
    readonly report: CallReport;
    readonly run: RunResult;
}

/** Runs the client to its end and parses its report (a client that printed none throws with its output). */
export async function joinCall(o: JoinOptions): Promise<JoinResult> {
    const bin = await rtcClient();
    const dir = makeTempDir("rtc-client");
    const tokenFile = path.join(dir, "token");
    fs.writeFileSync(tokenFile, o.token, { mode: 0o600 });
    const args = [o.mode, "--url", o.url, "--token-file", tokenFile, "--seconds", String(o.seconds)];
    if (o.relay) args.push("--relay");
    if (o.until) args.push("--audio", String(o.until.audio), "--video", String(o.until.video), "--from", String(o.until.from ?? 1));
    const [cmd, ...rest] = [...(o.prefix ?? []), bin, ...args];
    const r = await run(cmd, rest, {
        allowFailure: true,
        timeoutMs: (o.seconds + 60) * 1000,
        env: { ...process.env, ...o.env },
    });
    const last = r.stdout.trim().split("\n").pop() ?? "";
    let report: CallReport;
    try {
        report = JSON.parse(last) as CallReport;
    } catch {
        throw new Error(`rtc-client ${o.mode} printed no report (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-4000)}`);
    }
    if (r.code !== 0 && report.error === undefined) throw new Error(`rtc-client ${o.mode} exited with ${r.code}:\n${r.stderr.slice(-4000)}`);
    return { report, run: r };
}

/** The grants of a LiveKit access token (the claims lk-jwt-service sets, named as LiveKit's VideoGrant). */
export interface LivekitGrant {
    readonly room: string;
    readonly roomJoin?: boolean;
    readonly roomCreate?: boolean;
    readonly canPublish?: boolean;
    readonly canSubscribe?: boolean;
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** A LiveKit access token: an HS256 JWT signed with the API secret, `iss` the API key, `sub` the identity. */
export function livekitToken(apiKey: string, apiSecret: string, identity: string, grant: LivekitGrant, validSeconds = 600): string {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const claims = b64url(JSON.stringify({ iss: apiKey, sub: identity, nbf: now - 5, exp: now + validSeconds, video: grant }));
    const signature = b64url(crypto.createHmac("sha256", apiSecret).update(`${header}.${claims}`).digest());
    return `${header}.${claims}.${signature}`;
}

/** The claims of a JWT (not verified: what a token handed out says). */
export function jwtClaims(token: string): Record<string, unknown> {
    const part = token.split(".")[1];
    if (part === undefined) throw new Error("not a JWT");
    return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

/** The "releases" a test serves in place of LiveKit's and element-hq's GitHub releases. */
export interface RtcReleaseServer {
    /** Where it listens. */
    readonly port: number;
    /** The paths asked for, in order (a second run that downloads nothing adds none). */
    readonly downloads: readonly string[];
    /** The stack's release options (version, SHA-256, download URL) for a VM or host reaching this server at `base` (`http://host:port`). */
    releases(base: string): { livekit: Required<RtcRelease>; jwtService: Required<RtcRelease> };
    close(): Promise<void>;
}

/**
 * Serves the built programs as their projects publish them: livekit-server
 * in `livekit_<version>_linux_amd64.tar.gz`, lk-jwt-service as the program
 * itself, so the library's real download-and-verify path runs.
 */
export async function serveRtcReleases(bins: MatrixRtcBinaries, listenAddress = "127.0.0.1"): Promise<RtcReleaseServer> {
    const { livekit, jwtService } = RTC_DEFAULTS;
    const livekitFile = `livekit_${livekit.version}_linux_amd64.tar.gz`;
    const jwtFile = "lk-jwt-service_linux_amd64";
    const dir = makeTempDir("rtc-releases");
    await run("tar", ["-czf", path.join(dir, livekitFile), "-C", path.dirname(bins.livekitServer), "livekit-server"]);
    const files = new Map([
        [`/${livekitFile}`, fs.readFileSync(path.join(dir, livekitFile))],
        [`/${jwtFile}`, fs.readFileSync(bins.lkJwtService)],
    ]);
    const digest = (f: string) =>
        crypto
            .createHash("sha256")
            .update(files.get(`/${f}`)!)
            .digest("hex");
    const sha256 = { livekit: digest(livekitFile), jwtService: digest(jwtFile) };
    const server = await serveFiles(files, listenAddress, "MatrixRTC release server");
    return {
        port: server.port,
        downloads: server.requests,
        releases: (base) => ({
            livekit: { version: livekit.version, sha256: sha256.livekit, downloadUrl: `${base}/livekit_{version}_linux_{arch}.tar.gz` },
            jwtService: { version: jwtService.version, sha256: sha256.jwtService, downloadUrl: `${base}/lk-jwt-service_linux_{arch}` },
        }),
        close: server.close,
    };
}
