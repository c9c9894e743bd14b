// A room's messages and a user's files over Synapse's client API (plain
// HTTP, no SDK): what the upgrade, restore and move tests need to show that
// users, rooms, history and media survive a change of the server.

import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";

/** Calls the client API (`/_matrix/client/v3<path>`) as `token`; any answer but 200 fails the test, with the body. */
export async function clientApi(baseUrl: string, token: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${baseUrl}/_matrix/client/v3${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
}

/** The release Synapse reports on its federation version endpoint. */
export async function serverVersion(baseUrl: string): Promise<string> {
    const body = (await (await fetch(`${baseUrl}/_matrix/federation/v1/version`)).json()) as { server: { version: string } };
    return body.server.version;
}

/** Sends `text` to `roomId` as an m.text message (a fresh transaction id each time). */
export async function sendText(baseUrl: string, token: string, roomId: string, text: string): Promise<void> {
    const txn = crypto.randomBytes(12).toString("hex");
    await clientApi(baseUrl, token, "PUT", `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`, { msgtype: "m.text", body: text });
}

/** A fresh access token from a password login (m.login.password, m.id.user); a refused login fails the test, with the answer. */
export async function passwordLogin(baseUrl: string, user: string, password: string): Promise<string> {
    const login = (await (
        await fetch(`${baseUrl}/_matrix/client/v3/login`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ type: "m.login.password", identifier: { type: "m.id.user", user }, password }),
        })
    ).json()) as { access_token?: string };
    assert.ok(login.access_token, `${user} cannot log in at ${baseUrl}: ${JSON.stringify(login)}`);
    return login.access_token;
}

/**
 * The bodies of the room's messages, oldest first (up to 100), read by `user`
 * after a fresh password login: so the password is checked to work as well.
 */
export async function roomTexts(baseUrl: string, roomId: string, user: string, password: string): Promise<(string | undefined)[]> {
    const token = await passwordLogin(baseUrl, user, password);
    const r = await clientApi(baseUrl, token, "GET", `/rooms/${encodeURIComponent(roomId)}/messages?dir=f&limit=100`);
    return (r.chunk as { type: string; content: { body?: string } }[]).filter((e) => e.type === "m.room.message").map((e) => e.content.body);
}

/** Uploads `bytes` as `token`'s user; returns the file's mxc:// URI. */
export async function uploadMedia(baseUrl: string, token: string, bytes: Buffer): Promise<string> {
    const r = await fetch(`${baseUrl}/_matrix/media/v3/upload?filename=test.bin`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
        body: bytes,
    });
    const body = (await r.json()) as { content_uri?: string };
    assert.equal(r.status, 200, JSON.stringify(body));
    return body.content_uri!;
}

/** Downloads an mxc:// URI through the authenticated media API as `token`'s user; any answer but 200 fails the test. */
export async function downloadMedia(baseUrl: string, token: string, uri: string): Promise<Buffer> {
    const [server, id] = uri.replace("mxc://", "").split("/");
    const r = await fetch(`${baseUrl}/_matrix/client/v1/media/download/${server}/${id}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, `${uri}: ${r.status}`);
    return Buffer.from(await r.arrayBuffer());
}
