// A real Matrix client (matrix-js-sdk) for the integration suite.
// matrix-js-sdk is ESM-only; Node 22 loads it through require(esm).

import * as sdk from "matrix-js-sdk";
import { type Logger, logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger";

import { registerCleanup } from "./processes";

// The SDK logs a lot at debug/info; keep errors only (PULUMI_MATRIX_VERBOSE=1 shows everything).
const verbose = process.env.PULUMI_MATRIX_VERBOSE === "1";
const quietLogger: Logger = {
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (...msg: unknown[]) => console.error("[matrix-js-sdk]", ...msg),
    getChild: () => quietLogger,
};
{
    const l = sdkGlobalLogger as unknown as { setLevel?: (level: string, persist?: boolean) => void };
    l.setLevel?.(verbose ? "trace" : "error", false);
}
const clientLogger = verbose ? undefined : quietLogger;

export type MatrixClient = sdk.MatrixClient;

export interface LoggedIn {
    userId: string;
    accessToken: string;
    deviceId: string;
    /** Authenticated client (not syncing; call client.startClient() if a test needs sync). */
    client: MatrixClient;
}

/** Creates a client and registers it to be stopped on cleanup. */
export function makeClient(opts: sdk.ICreateClientOpts): MatrixClient {
    const client = sdk.createClient({ logger: clientLogger, ...opts });
    const unregister = registerCleanup({
        name: `matrix client ${opts.userId ?? opts.baseUrl}`,
        run: () => client.stopClient(),
        runSync: () => client.stopClient(),
    });
    const stop = client.stopClient.bind(client);
    client.stopClient = () => {
        unregister();
        stop();
    };
    return client;
}

/** m.login.password with an m.id.user identifier. */
export async function loginWithPassword(baseUrl: string, user: string, password: string): Promise<LoggedIn> {
    const anon = sdk.createClient({ baseUrl, logger: clientLogger });
    const res = await anon.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user },
        password,
        initial_device_display_name: "pulumi-matrix integration test",
    });
    anon.stopClient();
    const client = makeClient({ baseUrl, accessToken: res.access_token, userId: res.user_id, deviceId: res.device_id });
    return { userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id, client };
}

export interface WhoAmI {
    user_id: string;
    device_id?: string;
    is_guest?: boolean;
}

/** GET /_matrix/client/v3/account/whoami with the given token (through the SDK). */
export async function whoami(baseUrl: string, accessToken: string): Promise<WhoAmI> {
    const c = sdk.createClient({ baseUrl, accessToken, logger: clientLogger });
    try {
        return (await c.whoami()) as WhoAmI;
    } finally {
        c.stopClient();
    }
}
