// Clients of the federation suite: this process reaches the homeservers as
// their users' clients would, by name through the suite's DNS server, over
// TLS trusting Pebble's issuing root alone; matrix-js-sdk with its Rust
// crypto (in memory) as Element runs it.

import * as dns from "node:dns";
import type { LookupFunction } from "node:net";

import * as sdk from "matrix-js-sdk";
import { Agent, setGlobalDispatcher } from "undici";

import { makeClient, type MatrixClient } from "../integration/client";
import { registerWithSharedSecret } from "../integration/synapse";
import { type Homeserver } from "./homeserver";
import { DNS_ADDRESS } from "./network";

/**
 * Every fetch of this process (matrix-js-sdk's included) resolves names under
 * `.test` at the suite's DNS server (or `dnsAddress`) and trusts only `rootPem` for TLS.
 */
export function useSuiteNetwork(rootPem: string, dnsAddress = DNS_ADDRESS): void {
    const resolver = new dns.Resolver({ timeout: 3000, tries: 2 });
    resolver.setServers([dnsAddress]);
    const lookup: LookupFunction = (hostname, options, callback) => {
        if (!hostname.endsWith(".test")) return dns.lookup(hostname, options, callback);
        resolver.resolve4(hostname, (err, addresses) => {
            if (err || addresses.length === 0) return callback(err ?? new Error(`${hostname}: no A record`), "", 4);
            if (options.all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, [{ address: addresses[0]!, family: 4 }]);
            callback(null, addresses[0]!, 4);
        });
    };
    setGlobalDispatcher(new Agent({ connect: { ca: [rootPem], lookup } }));
}

/** A user of one homeserver with a syncing client. */
export interface SuiteUser {
    readonly userId: string;
    readonly client: MatrixClient;
}

/**
 * Registers `name` on `hs` (shared secret, as an admin: it may lift its own
 * rate limit, which the suite's 100-message bursts would hit), starts a client
 * with Rust crypto in memory and waits for its first sync.
 */
export async function startUser(hs: Homeserver, name: string, password: string): Promise<SuiteUser> {
    const reg = await registerWithSharedSecret(hs.baseUrl, hs.sharedSecret, name, password, true);
    const r = await fetch(`${hs.baseUrl}/_synapse/admin/v1/users/${encodeURIComponent(reg.user_id)}/override_ratelimit`, {
        method: "POST",
        headers: { authorization: `Bearer ${reg.access_token}`, "content-type": "application/json" },
        body: JSON.stringify({ messages_per_second: 0, burst_count: 0 }),
    });
    if (!r.ok) throw new Error(`override_ratelimit for ${reg.user_id}: HTTP ${r.status} ${await r.text()}`);
    const client = makeClient({ baseUrl: hs.baseUrl, accessToken: reg.access_token, userId: reg.user_id, deviceId: reg.device_id });
    await client.initRustCrypto({ useIndexedDB: false });
    const synced = new Promise<void>((resolve) => {
        const onSync = (state: sdk.SyncState) => {
            if (state === sdk.SyncState.Prepared || state === sdk.SyncState.Syncing) {
                client.off(sdk.ClientEvent.Sync, onSync);
                resolve();
            }
        };
        client.on(sdk.ClientEvent.Sync, onSync);
    });
    await client.startClient({ initialSyncLimit: 10, lazyLoadMembers: true });
    await synced;
    return { userId: reg.user_id, client };
}
