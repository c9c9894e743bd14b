import { ALERT_ROOM_UNIT, MONITORING_FILES, MonitoringSettings } from "../model/monitoring";
import { hashComment, MANAGED_HEADER } from "./drift";
import { API_CALL_PY, REGISTER_USER_PY } from "./synapse/admin";
import { networkServiceSandbox, UNIT_HEADER } from "./systemd";

/**
 * The alert room (issue 23): Alertmanager calls a relay of the library's
 * own on 127.0.0.1 (a webhook with a bearer token), and the relay posts
 * each notification into the room as an `m.notice` of a bot account. One
 * Python program (standard library only) with two commands: `setup`, run as
 * root by the deployment (the webhook token, the bot's registration and
 * login, joining the room), and `serve`, the relay's daemon under its unit.
 * Tokens and the password are made on the host and stay in root-only files;
 * the daemon reads its two tokens through systemd's credentials.
 */

/** The paths the program uses (the host's by default; a test moves them). The password: the settings' `passwordFile` unless given. */
export type AlertRoomPaths = Record<"alertRoomWebhookToken" | "alertRoomAccessToken", string> & { alertRoomPassword?: string };

/** The relay's settings file: nothing secret (where the secret files are, not what they hold). */
export function renderAlertRoomConfig(s: MonitoringSettings, paths: AlertRoomPaths = MONITORING_FILES): string {
    const r = s.alertRoom;
    if (!r) throw new Error("renderAlertRoomConfig: no alert room");
    const config = {
        homeserver: r.homeserverUrl,
        server_name: s.serverName,
        room: r.room,
        user: r.user,
        listen: { host: "127.0.0.1", port: r.port },
        shared_secret_file: r.sharedSecretFile,
        webhook_token_file: paths.alertRoomWebhookToken,
        access_token_file: paths.alertRoomAccessToken,
        password_file: paths.alertRoomPassword ?? r.passwordFile,
        webhook_group: "prometheus",
    };
    return `${JSON.stringify(config, null, 4)}\n`;
}

/** The relay's program: `setup CONFIG` (root, by the deployment) and `serve CONFIG` (the daemon). */
export const ALERT_ROOM_PY = `#!/usr/bin/python3
${hashComment(MANAGED_HEADER)}
"""Alertmanager's alerts into a Matrix room.

setup CONFIG: as root, by the deployment: makes the token Alertmanager shows
  the relay, registers the bot (not an admin) and logs it in, joins the room;
  prints "credentials changed" when a token the daemon reads is new.
serve CONFIG: the relay Alertmanager calls (POST /alerts with its bearer
  token); each notification becomes one m.notice in the room. It answers 503
  when the homeserver does not take it, so Alertmanager sends it again.
"""
import grp, hashlib, hmac, html, http.server, json, os, secrets, sys, threading, urllib.error, urllib.parse, urllib.request, uuid


${API_CALL_PY}

def call(base, method, path, body=None, token=None, timeout=30):
    return api_call(base, method, path, body, token, timeout)


${REGISTER_USER_PY}

def read(path):
    with open(path) as f:
        return f.read().strip()


def write_private(path, text, mode=0o600, group=None):
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchown(fd, 0, grp.getgrnam(group).gr_gid if group else 0)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\\n")
    os.replace(path + ".new", path)


def join(cfg, token):
    """Joins the room (an invite, or a public room, lets the bot in): its room ID."""
    return call(cfg["homeserver"], "POST", "/_matrix/client/v3/join/" + urllib.parse.quote(cfg["room"], safe=""), {}, token)["room_id"]


def setup(cfg):
    mxid = "@%s:%s" % (cfg["user"], cfg["server_name"])
    changed = False
    if not os.path.exists(cfg["webhook_token_file"]):
        write_private(cfg["webhook_token_file"], secrets.token_urlsafe(32), 0o640, cfg["webhook_group"])
        changed = True
    token = None
    if os.path.exists(cfg["access_token_file"]):
        stored = read(cfg["access_token_file"])
        try:
            if call(cfg["homeserver"], "GET", "/_matrix/client/v3/account/whoami", token=stored).get("user_id") == mxid:
                token = stored
        except ApiError as e:
            if e.status != 401:
                raise
    if token is None:
        if not os.path.exists(cfg["password_file"]):
            write_private(cfg["password_file"], secrets.token_urlsafe(32))
        password = read(cfg["password_file"])
        if register_user(cfg["homeserver"], cfg["shared_secret_file"], cfg["user"], password, False) == "created":
            print("registered the alert room's bot %s" % mxid)
        try:
            login = call(cfg["homeserver"], "POST", "/_matrix/client/v3/login", {
                "type": "m.login.password", "identifier": {"type": "m.id.user", "user": cfg["user"]},
                "password": password, "initial_device_display_name": "pulumi-matrix alert room"})
        except ApiError as e:
            if e.status == 403:
                sys.exit("%s exists but does not take the password in %s: choose another alertRoom.user, or reset its password to that file's and run again" % (mxid, cfg["password_file"]))
            raise
        write_private(cfg["access_token_file"], login["access_token"])
        token = login["access_token"]
        changed = True
    try:
        join(cfg, token)
        print("%s is in %s" % (mxid, cfg["room"]))
    except ApiError as e:
        if e.status not in (403, 404):
            raise
        print("%s cannot join %s yet (%s): invite it; it joins when the next alert comes" % (mxid, cfg["room"], e))
    if changed:
        print("credentials changed")


def render(payload):
    """The notification as text and HTML: one line per alert, its state, name, instance and summary."""
    text, rich = [], []
    for a in payload.get("alerts", []):
        labels, notes = a.get("labels", {}), a.get("annotations", {})
        state = "RESOLVED" if a.get("status") == "resolved" else "FIRING"
        name = labels.get("alertname", "alert")
        where = labels.get("instance") or labels.get("job") or ""
        about = notes.get("summary") or notes.get("description") or ""
        head = "%s: %s%s" % (state, name, " on " + where if where else "")
        text.append(head + (": " + about if about else ""))
        rich.append("<b>%s</b>: %s%s%s" % (state, html.escape(name), " on <code>%s</code>" % html.escape(where) if where else "", ": " + html.escape(about) if about else ""))
    if not text:
        text, rich = ["(an empty notification)"], ["(an empty notification)"]
    return "\\n".join(text), "<br>".join(rich)


class Relay:
    def __init__(self, cfg, creds):
        self.cfg = cfg
        self.webhook = ("Bearer " + read(os.path.join(creds, "webhook-token"))).encode()
        self.token = read(os.path.join(creds, "access-token"))
        self.room_id = None
        self.lock = threading.Lock()

    def post(self, payload):
        text, rich = render(payload)
        content = {"msgtype": "m.notice", "body": text, "format": "org.matrix.custom.html", "formatted_body": rich}
        with self.lock:
            for attempt in (1, 2):
                if self.room_id is None:
                    self.room_id = join(self.cfg, self.token)
                path = "/_matrix/client/v3/rooms/%s/send/m.room.message/%s" % (urllib.parse.quote(self.room_id, safe=""), uuid.uuid4().hex)
                try:
                    return call(self.cfg["homeserver"], "PUT", path, content, self.token)["event_id"]
                except ApiError as e:
                    # Removed from the room since it joined: join again once.
                    if e.status != 403 or attempt == 2:
                        raise
                    self.room_id = None


def serve(cfg):
    relay = Relay(cfg, os.environ["CREDENTIALS_DIRECTORY"])

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "pulumi-matrix-alert-room"

        def log_message(self, fmt, *args):
            sys.stderr.write("%s\\n" % (fmt % args))

        def answer(self, status, text):
            body = (text + "\\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.answer(200, "OK") if self.path == "/health" else self.answer(404, "not found")

        def do_POST(self):
            if self.path != "/alerts":
                return self.answer(404, "not found")
            if not hmac.compare_digest(self.headers.get("Authorization", "").encode(), relay.webhook):
                return self.answer(401, "unauthorized")
            length = int(self.headers.get("Content-Length") or 0)
            if length > 1 << 20:
                return self.answer(413, "too large")
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                return self.answer(400, "not JSON")
            try:
                event = relay.post(payload)
            except (ApiError, OSError) as e:
                sys.stderr.write("posting to %s failed: %s\\n" % (cfg["room"], e))
                return self.answer(503, "the homeserver did not take it")
            sys.stderr.write("posted %d alert(s) to %s as %s\\n" % (len(payload.get("alerts", [])), cfg["room"], event))
            self.answer(200, "posted")

    server = http.server.ThreadingHTTPServer((cfg["listen"]["host"], cfg["listen"]["port"]), Handler)
    sys.stderr.write("relaying alerts to %s on %s:%d\\n" % (cfg["room"], cfg["listen"]["host"], cfg["listen"]["port"]))
    server.serve_forever()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("setup", "serve"):
        sys.exit("usage: alert-room.py setup|serve CONFIG")
    with open(sys.argv[2]) as f:
        cfg = json.load(f)
    setup(cfg) if sys.argv[1] == "setup" else serve(cfg)


if __name__ == "__main__":
    main()
`;

/**
 * The relay's unit: a dynamic user with nothing but its two tokens
 * (LoadCredential=: systemd reads the root-only files and hands the
 * service a private copy), on 127.0.0.1, in the library's sandbox.
 */
export function renderAlertRoomUnit(): string {
    const f = MONITORING_FILES;
    return `${UNIT_HEADER}
[Unit]
Description=pulumi-matrix: Alertmanager's alerts into a Matrix room
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
DynamicUser=yes
LoadCredential=webhook-token:${f.alertRoomWebhookToken}
LoadCredential=access-token:${f.alertRoomAccessToken}
ExecStart=/usr/bin/python3 ${f.alertRoomProgram} serve ${f.alertRoomConfig}
Restart=on-failure
RestartSec=5
${networkServiceSandbox(true)}

[Install]
WantedBy=multi-user.target
`;
}

/** The unit's name (the relay's health on its port). */
export const ALERT_ROOM_SERVICE = `${ALERT_ROOM_UNIT}.service`;
