import type { WorkerRole, WorkerStream } from ".";

/**
 * The route table: which request paths (and methods) each worker role can
 * serve, and how requests must stick to one instance, from Synapse's
 * docs/workers.md. A reverse proxy renders its locations from it in this
 * order (nginx takes the first matching regex location), each location
 * going to the first of its roles that has workers and accepts the method,
 * and everything else (and a route without such a role) to the main
 * process.
 */

/** HTTP methods a route target may be limited to. */
export type RouteMethod = "GET" | "HEAD" | "POST" | "PUT" | "DELETE";

/** How the requests of a route are spread over the instances of its role. */
export type Stickiness =
    /** Any instance (round robin). */
    | "none"
    /** By the client's address: inbound federation transactions of one server go to one process. */
    | "source_ip"
    /** By the user (the access token's localpart): a user's syncs go to one process. */
    | "user"
    /** By the room ID in the path: a room's event sending and pagination go to one process. */
    | "room"
    /** Always the same single instance (SSO must finish where it started). */
    | "single";

export interface RouteTarget {
    role: WorkerRole;
    /** The methods this role takes on the route; absent: every method. */
    methods?: readonly RouteMethod[];
}

export interface WorkerRoute {
    /** The path regex, as Synapse's docs and nginx write it. */
    pattern: string;
    /** Roles in order of preference: the first with workers (that takes the method) serves it; otherwise the main process. */
    targets: readonly RouteTarget[];
    sticky: Stickiness;
    /** Paths the route must serve: each matches `pattern`, and no route before it in the table. */
    examples: readonly string[];
    /** The docs' heading the route is listed under. */
    group: string;
    /** A stream whoever serves the route must write (Synapse fails the request otherwise): each of its roles writes it. */
    writes?: WorkerStream;
    /**
     * The request may be held open by the server until there is news (a
     * long poll: `/sync` and its kin): a proxy gives it a long read timeout,
     * whoever serves it. Every other request keeps the proxy's default.
     */
    longPoll?: true;
}

const V = "(api/v1|r0|v3|unstable)";
const R = "(r0|v3|unstable)";

/** Routes of one role, listed under one heading. */
function routes(group: string, targets: readonly RouteTarget[], sticky: Stickiness, list: [string, ...string[]][], writes?: WorkerStream): WorkerRoute[] {
    return list.map(([pattern, ...examples]) => ({ pattern, targets, sticky, examples, group, ...(writes ? { writes } : {}) }));
}

/** Routes whose requests long-poll (see `WorkerRoute.longPoll`). */
const longPolls = (list: WorkerRoute[]): WorkerRoute[] => list.map((r) => ({ ...r, longPoll: true as const }));

const reader: RouteTarget = { role: "client_reader" };
const readerGet: RouteTarget = { role: "client_reader", methods: ["GET", "HEAD"] };

/**
 * Every route, in the order a reverse proxy must try them: stream writers'
 * paths first (they overlap the client reader's), then media, sync,
 * federation, event sending, and the client reader's.
 */
export const WORKER_ROUTES: readonly WorkerRoute[] = [
    ...routes("typing stream", [{ role: "typing" }], "none", [
        [`^/_matrix/client/${V}/rooms/.*/typing`, "/_matrix/client/v3/rooms/!r:example.com/typing/@u:example.com"],
    ]),
    ...routes("to_device stream", [{ role: "to_device" }], "none", [
        [`^/_matrix/client/${R}/sendToDevice/`, "/_matrix/client/v3/sendToDevice/m.room_key_request/t1"],
    ]),
    ...routes("account_data stream", [{ role: "account_data" }, readerGet], "none", [
        [`^/_matrix/client/${R}/.*/tags`, "/_matrix/client/v3/user/@u:example.com/rooms/!r:example.com/tags/m.favourite"],
        [`^/_matrix/client/${R}/.*/account_data`, "/_matrix/client/v3/user/@u:example.com/account_data/m.direct"],
    ]),
    ...routes("receipts stream", [{ role: "receipts" }, reader], "none", [
        [`^/_matrix/client/${R}/rooms/.*/receipt`, "/_matrix/client/v3/rooms/!r:example.com/receipt/m.read/$e"],
        [`^/_matrix/client/${R}/rooms/.*/read_markers`, "/_matrix/client/v3/rooms/!r:example.com/read_markers"],
    ]),
    ...routes("presence stream", [{ role: "presence" }, readerGet], "none", [
        [`^/_matrix/client/${V}/presence/`, "/_matrix/client/v3/presence/@u:example.com/status"],
    ]),
    ...routes("push_rules stream", [{ role: "push_rules" }, readerGet], "none", [
        [`^/_matrix/client/${V}/pushrules/`, "/_matrix/client/v3/pushrules/", "/_matrix/client/v3/pushrules/global/override/r"],
    ]),
    ...routes("device_lists stream", [{ role: "device_lists" }, reader], "none", [
        ["^/_matrix/client/(r0|v3)/delete_devices$", "/_matrix/client/v3/delete_devices"],
        [`^/_matrix/client/${V}/devices(/|$)`, "/_matrix/client/v3/devices", "/_matrix/client/v3/devices/ABCDEF"],
        [`^/_matrix/client/${R}/keys/upload`, "/_matrix/client/v3/keys/upload"],
        [`^/_matrix/client/${V}/keys/device_signing/upload$`, "/_matrix/client/v3/keys/device_signing/upload"],
        [`^/_matrix/client/${V}/keys/signatures/upload$`, "/_matrix/client/v3/keys/signatures/upload"],
    ]),
    ...routes("media repository", [{ role: "media_repository" }], "none", [
        ["^/_matrix/media/", "/_matrix/media/v3/upload", "/_matrix/media/r0/download/example.com/abc"],
        ["^/_matrix/client/v1/media/", "/_matrix/client/v1/media/download/example.com/abc"],
        ["^/_matrix/federation/v1/media/", "/_matrix/federation/v1/media/download/abc"],
        ["^/_synapse/admin/v1/purge_media_cache$", "/_synapse/admin/v1/purge_media_cache"],
        ["^/_synapse/admin/v1/room/.*/media.*$", "/_synapse/admin/v1/room/!r:example.com/media"],
        ["^/_synapse/admin/v1/user/.*/media.*$", "/_synapse/admin/v1/user/@u:example.com/media"],
        ["^/_synapse/admin/v1/media/.*$", "/_synapse/admin/v1/media/example.com/abc"],
    ]),
    // Synapse >= 1.152 (docs/upgrade.md): "quarantining media will not work" unless its server writes this stream.
    ...routes(
        "media repository",
        [{ role: "media_repository" }],
        "none",
        [["^/_synapse/admin/v1/quarantine_media/.*$", "/_synapse/admin/v1/quarantine_media/example.com/abc"]],
        "quarantined_media_changes",
    ),
    ...routes("media repository", [{ role: "media_repository" }], "none", [
        ["^/_synapse/admin/v1/users/.*/media$", "/_synapse/admin/v1/users/@u:example.com/media"],
    ]),
    // Clients hold /sync (and the legacy /events, sliding sync) open for their `timeout`; initialSync can take long on big accounts.
    ...longPolls(
        routes("sync", [{ role: "synchrotron" }], "user", [
            ["^/_matrix/client/(r0|v3)/sync$", "/_matrix/client/v3/sync"],
            ["^/_matrix/client/(api/v1|r0|v3)/events$", "/_matrix/client/v3/events"],
            ["^/_matrix/client/(api/v1|r0|v3)/initialSync$", "/_matrix/client/v3/initialSync"],
            ["^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$", "/_matrix/client/v3/rooms/!r:example.com/initialSync"],
            // Native sliding sync (MSC4186, what Element X uses); Synapse's generic worker serves it.
            ["^/_matrix/client/unstable/org.matrix.simplified_msc3575/.*", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"],
        ]),
    ),
    ...routes("inbound federation transactions", [{ role: "federation_reader" }], "source_ip", [
        ["^/_matrix/federation/v1/send/", "/_matrix/federation/v1/send/1700000000000"],
    ]),
    ...routes("federation", [{ role: "federation_reader" }], "none", [
        ["^/_matrix/federation/v1/version$", "/_matrix/federation/v1/version"],
        ["^/_matrix/federation/v1/event/", "/_matrix/federation/v1/event/$e"],
        ["^/_matrix/federation/v1/state/", "/_matrix/federation/v1/state/!r:example.com"],
        ["^/_matrix/federation/v1/state_ids/", "/_matrix/federation/v1/state_ids/!r:example.com"],
        ["^/_matrix/federation/v1/backfill/", "/_matrix/federation/v1/backfill/!r:example.com"],
        ["^/_matrix/federation/v1/get_missing_events/", "/_matrix/federation/v1/get_missing_events/!r:example.com"],
        ["^/_matrix/federation/v1/publicRooms", "/_matrix/federation/v1/publicRooms"],
        ["^/_matrix/federation/v1/query/", "/_matrix/federation/v1/query/profile"],
        ["^/_matrix/federation/v1/make_join/", "/_matrix/federation/v1/make_join/!r:example.com/@u:example.org"],
        ["^/_matrix/federation/v1/make_leave/", "/_matrix/federation/v1/make_leave/!r:example.com/@u:example.org"],
        ["^/_matrix/federation/(v1|v2)/send_join/", "/_matrix/federation/v2/send_join/!r:example.com/$e"],
        ["^/_matrix/federation/(v1|v2)/send_leave/", "/_matrix/federation/v2/send_leave/!r:example.com/$e"],
        ["^/_matrix/federation/v1/make_knock/", "/_matrix/federation/v1/make_knock/!r:example.com/@u:example.org"],
        ["^/_matrix/federation/v1/send_knock/", "/_matrix/federation/v1/send_knock/!r:example.com/$e"],
        ["^/_matrix/federation/(v1|v2)/invite/", "/_matrix/federation/v2/invite/!r:example.com/$e"],
        ["^/_matrix/federation/v1/event_auth/", "/_matrix/federation/v1/event_auth/!r:example.com/$e"],
        ["^/_matrix/federation/v1/timestamp_to_event/", "/_matrix/federation/v1/timestamp_to_event/!r:example.com"],
        ["^/_matrix/federation/v1/exchange_third_party_invite/", "/_matrix/federation/v1/exchange_third_party_invite/!r:example.com"],
        ["^/_matrix/federation/v1/user/devices/", "/_matrix/federation/v1/user/devices/@u:example.com"],
        ["^/_matrix/key/v2/query", "/_matrix/key/v2/query", "/_matrix/key/v2/query/example.org"],
        ["^/_matrix/federation/v1/hierarchy/", "/_matrix/federation/v1/hierarchy/!r:example.com"],
    ]),
    ...routes("event sending", [{ role: "event_creator" }], "room", [
        [`^/_matrix/client/${V}/rooms/.*/redact`, "/_matrix/client/v3/rooms/!r:example.com/redact/$e/t1"],
        [`^/_matrix/client/${V}/rooms/.*/send`, "/_matrix/client/v3/rooms/!r:example.com/send/m.room.message/t1"],
        [`^/_matrix/client/${V}/rooms/.*/state/`, "/_matrix/client/v3/rooms/!r:example.com/state/m.room.name/"],
        [`^/_matrix/client/${V}/rooms/.*/(join|invite|leave|ban|unban|kick)$`, "/_matrix/client/v3/rooms/!r:example.com/invite"],
    ]),
    ...routes("event sending", [{ role: "event_creator" }], "none", [
        [`^/_matrix/client/${V}/join/`, "/_matrix/client/v3/join/#a:example.com"],
        [`^/_matrix/client/${V}/knock/`, "/_matrix/client/v3/knock/!r:example.com"],
        [`^/_matrix/client/${V}/profile/`, "/_matrix/client/v3/profile/@u:example.com/displayname"],
    ]),
    ...routes("user directory", [{ role: "user_dir" }, reader], "none", [
        [`^/_matrix/client/${R}/user_directory/search$`, "/_matrix/client/v3/user_directory/search"],
    ]),
    ...routes("pagination", [reader], "room", [[`^/_matrix/client/${V}/rooms/.*/messages$`, "/_matrix/client/v3/rooms/!r:example.com/messages"]]),
    ...routes("SSO", [reader], "single", [
        [`^/_matrix/client/${V}/login/sso/redirect`, "/_matrix/client/v3/login/sso/redirect"],
        ["^/_synapse/client/pick_idp$", "/_synapse/client/pick_idp"],
        ["^/_synapse/client/pick_username", "/_synapse/client/pick_username/account_details"],
        ["^/_synapse/client/new_user_consent$", "/_synapse/client/new_user_consent"],
        ["^/_synapse/client/sso_register$", "/_synapse/client/sso_register"],
        ["^/_synapse/client/oidc/callback$", "/_synapse/client/oidc/callback"],
        ["^/_synapse/client/saml2/authn_response$", "/_synapse/client/saml2/authn_response"],
        [`^/_matrix/client/${V}/login/cas/ticket$`, "/_matrix/client/v3/login/cas/ticket"],
    ]),
    ...routes("client API", [reader], "none", [
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/createRoom$", "/_matrix/client/v3/createRoom"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$", "/_matrix/client/v3/publicRooms"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/joined_members$", "/_matrix/client/v3/rooms/!r:example.com/joined_members"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/context/.*$", "/_matrix/client/v3/rooms/!r:example.com/context/$e"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/members$", "/_matrix/client/v3/rooms/!r:example.com/members"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/state$", "/_matrix/client/v3/rooms/!r:example.com/state"],
        ["^/_matrix/client/v1/rooms/.*/hierarchy$", "/_matrix/client/v1/rooms/!r:example.com/hierarchy"],
        ["^/_matrix/client/(v1|unstable)/rooms/.*/relations/", "/_matrix/client/v1/rooms/!r:example.com/relations/$e"],
        ["^/_matrix/client/v1/rooms/.*/threads$", "/_matrix/client/v1/rooms/!r:example.com/threads"],
        ["^/_matrix/client/unstable/im.nheko.summary/summary/.*$", "/_matrix/client/unstable/im.nheko.summary/summary/!r:example.com"],
        ["^/_matrix/client/v1/room_summary/.*$", "/_matrix/client/v1/room_summary/!r:example.com"],
        ["^/_matrix/client/(r0|v3|unstable)/account/3pid$", "/_matrix/client/v3/account/3pid"],
        ["^/_matrix/client/(r0|v3|unstable)/account/whoami$", "/_matrix/client/v3/account/whoami"],
        ["^/_matrix/client/(r0|v3|unstable)/account/deactivate$", "/_matrix/client/v3/account/deactivate"],
        ["^/_matrix/client/versions$", "/_matrix/client/versions"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$", "/_matrix/client/v3/voip/turnServer"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/.*/event/", "/_matrix/client/v3/rooms/!r:example.com/event/$e"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/joined_rooms$", "/_matrix/client/v3/joined_rooms"],
        ["^/_matrix/client/v1/rooms/.*/timestamp_to_event$", "/_matrix/client/v1/rooms/!r:example.com/timestamp_to_event"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable/.*)/rooms/.*/aliases", "/_matrix/client/v3/rooms/!r:example.com/aliases"],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/search$", "/_matrix/client/v3/search"],
        [
            "^/_matrix/client/(r0|v3|unstable)/user/.*/filter(/|$)",
            "/_matrix/client/v3/user/@u:example.com/filter",
            "/_matrix/client/v3/user/@u:example.com/filter/1",
        ],
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/directory/room/.*$", "/_matrix/client/v3/directory/room/#a:example.com"],
        ["^/_matrix/client/(r0|v3|unstable)/capabilities$", "/_matrix/client/v3/capabilities"],
        ["^/_matrix/client/(r0|v3|unstable)/notifications$", "/_matrix/client/v3/notifications"],
        ["^/_synapse/admin/v1/rooms/[^/]+$", "/_synapse/admin/v1/rooms/!r:example.com"],
        ["^/_matrix/client/unstable/org.matrix.msc4140/delayed_events(/.*/restart)?$", "/_matrix/client/unstable/org.matrix.msc4140/delayed_events"],
    ]),
    ...routes("encryption", [reader], "none", [
        ["^/_matrix/client/(r0|v3|unstable)/keys/query$", "/_matrix/client/v3/keys/query"],
        ["^/_matrix/client/(r0|v3|unstable)/keys/changes$", "/_matrix/client/v3/keys/changes"],
        ["^/_matrix/client/(r0|v3|unstable)/keys/claim$", "/_matrix/client/v3/keys/claim"],
        ["^/_matrix/client/(r0|v3|unstable)/room_keys/", "/_matrix/client/v3/room_keys/version"],
    ]),
    ...routes("registration and login", [reader], "none", [
        ["^/_matrix/client/(api/v1|r0|v3|unstable)/login$", "/_matrix/client/v3/login"],
        ["^/_matrix/client/(r0|v3|unstable)/register$", "/_matrix/client/v3/register"],
        ["^/_matrix/client/(r0|v3|unstable)/register/available$", "/_matrix/client/v3/register/available"],
        ["^/_matrix/client/v1/register/m.login.registration_token/validity$", "/_matrix/client/v1/register/m.login.registration_token/validity"],
        ["^/_matrix/client/(r0|v3|unstable)/password_policy$", "/_matrix/client/v3/password_policy"],
    ]),
    ...routes("admin API (GET)", [readerGet], "none", [["^/_synapse/admin/v2/users/[^/]+$", "/_synapse/admin/v2/users/@u:example.com"]]),
];

/**
 * Who serves a request: the route it matches first, and the first of its
 * roles that has workers (`present`) and takes the method; `main` when none
 * does or no route matches.
 */
export function routeRequest(
    path: string,
    method: RouteMethod,
    present: (role: WorkerRole) => boolean,
    routes: readonly WorkerRoute[] = WORKER_ROUTES,
): { role: WorkerRole | "main"; route?: WorkerRoute } {
    const route = routes.find((r) => new RegExp(r.pattern).test(path));
    if (!route) return { role: "main" };
    const target = route.targets.find((t) => present(t.role) && (!t.methods || t.methods.includes(method)));
    return { role: target?.role ?? "main", route };
}
