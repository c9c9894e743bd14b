# Managed by pulumi-matrix. Edits made here are reported by `sudo pulumi-matrix-drift`
# and replaced when pulumi-matrix next writes this file (a change that affects it, or a re-apply).
"""Synapse purges: cached remote media, rooms without local members (see --help)."""
import argparse, hashlib, hmac, json, os, secrets, sys, time, urllib.error, urllib.parse, urllib.request

BASE = "http://127.0.0.1:8008"
SERVER_NAME = "example.com"
SHARED_SECRET_FILE = "/etc/matrix-synapse/secrets/registration_shared_secret"
STATE_DIR = "/var/lib/pulumi-matrix/maintenance"
ADMIN = "pulumi-matrix-maintenance"
TOKEN_FILE = os.path.join(STATE_DIR, "admin-token")
PASSWORD_FILE = os.path.join(STATE_DIR, "admin-password")
DAY_MS = 86400 * 1000


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__("HTTP %s: %s" % (status, body.get("error", body) if isinstance(body, dict) else body))
        self.status, self.body = status, body


def api_call(base, method, path, body=None, token=None, timeout=120):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        try:
            err = json.load(e)
        except ValueError:
            err = {"error": e.reason}
        raise ApiError(e.code, err) from None


def call(method, path, body=None, token=None, timeout=120):
    return api_call(BASE, method, path, body, token, timeout)


def register_user(base_url, secret_file, user, password, admin):
    """Registers user (a server admin when admin is True) with the secret in secret_file: "created", or "exists" when the name is taken."""
    url = base_url + "/_synapse/admin/v1/register"
    secret = open(secret_file).read().strip().encode()
    nonce = json.load(urllib.request.urlopen(url, timeout=30))["nonce"]
    kind = b"admin" if admin else b"notadmin"
    mac = hmac.new(secret, b"\0".join([nonce.encode(), user.encode(), password.encode(), kind]), hashlib.sha1).hexdigest()
    body = json.dumps({"nonce": nonce, "username": user, "password": password, "admin": admin, "mac": mac}).encode()
    try:
        urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}), timeout=30)
        return "created"
    except urllib.error.HTTPError as e:
        err = json.load(e)
        if err.get("errcode") == "M_USER_IN_USE":
            return "exists"
        sys.exit("registering the user failed: %s %s" % (e.code, err.get("error")))


def read(path):
    with open(path) as f:
        return f.read().strip()


def write_private(path, text):
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(path + ".new", path)


def admin_token():
    """The maintenance admin's access token: the stored one while it works, else a login (registering the account once)."""
    os.makedirs(STATE_DIR, mode=0o700, exist_ok=True)
    if os.path.exists(TOKEN_FILE):
        token = read(TOKEN_FILE)
        try:
            call("GET", "/_matrix/client/v3/account/whoami", token=token)
            return token
        except ApiError as e:
            if e.status != 401:
                raise
    if not os.path.exists(PASSWORD_FILE):
        write_private(PASSWORD_FILE, secrets.token_urlsafe(32))
    password = read(PASSWORD_FILE)
    if register_user(BASE, SHARED_SECRET_FILE, ADMIN, password, True) == "created":
        print("registered the maintenance admin @%s:%s" % (ADMIN, SERVER_NAME))
    try:
        login = call("POST", "/_matrix/client/v3/login", {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": ADMIN}, "password": password, "initial_device_display_name": "pulumi-matrix maintenance"})
    except ApiError as e:
        if e.status == 403:
            sys.exit("the maintenance admin @%s:%s exists but does not accept the password in %s: set it again (admin API reset_password) or deactivate the account, then run again" % (ADMIN, SERVER_NAME, PASSWORD_FILE))
        raise
    write_private(TOKEN_FILE, login["access_token"])
    return login["access_token"]


def purge_media(args):
    before = int(time.time() * 1000) - args.older_than_days * DAY_MS
    token = admin_token()
    # Synapse answers once every file is deleted: a large cache takes a while.
    result = call("POST", "/_synapse/admin/v1/purge_media_cache?before_ts=%d" % before, {}, token, timeout=6 * 3600)
    print("purged %d cached remote media files not accessed for %d days" % (result.get("deleted", 0), args.older_than_days))


def empty_rooms(token, days):
    """Rooms without a local member whose newest event is older than `days`, with that event's time.

    Once the last local member left, Synapse drops the room's current state and
    receives none of its events any more: the newest event it has (the last
    local leave, or what came before it) is when the room became empty here."""
    now = int(time.time() * 1000)
    found, start = [], 0
    while True:
        page = call("GET", "/_synapse/admin/v1/rooms?from=%d&limit=100&order_by=name" % start, token=token)
        for room in page["rooms"]:
            if room.get("joined_local_members", 0) != 0:
                continue
            room_id = room["room_id"]
            newest = call("GET", "/_synapse/admin/v1/rooms/%s/messages?dir=b&limit=1" % urllib.parse.quote(room_id), token=token)["chunk"]
            if not newest:
                print("kept %s: it has no events to measure its emptiness by" % room_id)
                continue
            last = newest[0]["origin_server_ts"]
            if now - last >= days * DAY_MS:
                found.append((room_id, room.get("name"), last))
        if "next_batch" not in page:
            return found
        start = int(page["next_batch"])


def purge_rooms(args):
    token = admin_token()
    rooms = empty_rooms(token, args.empty_for_days)
    failed = 0
    for room_id, name, last in rooms:
        when = time.strftime("%Y-%m-%d", time.gmtime(last / 1000))
        label = "%s (%s)" % (room_id, name) if name else room_id
        if not args.delete:
            print("dry run: would delete %s, without local members since %s" % (label, when))
            continue
        delete_id = call("DELETE", "/_synapse/admin/v2/rooms/%s" % urllib.parse.quote(room_id), {"purge": True}, token)["delete_id"]
        deadline = time.time() + args.timeout
        while True:
            status = call("GET", "/_synapse/admin/v2/rooms/delete_status/%s" % urllib.parse.quote(delete_id), token=token)
            if status["status"] in ("complete", "failed") or time.time() > deadline:
                break
            time.sleep(2)
        if status["status"] == "complete":
            print("deleted %s, without local members since %s" % (label, when))
        else:
            failed += 1
            print("deleting %s did not complete: %s %s" % (label, status["status"], status.get("error", "")), file=sys.stderr)
    print("%d rooms without local members for %d days%s" % (len(rooms), args.empty_for_days, "" if args.delete else " (dry run: nothing deleted)"))
    if failed:
        sys.exit("%d room deletions failed" % failed)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("media", help="purge cached remote media")
    m.add_argument("--older-than-days", type=int, required=True)
    r = sub.add_parser("rooms", help="delete rooms without local members")
    r.add_argument("--empty-for-days", type=int, required=True)
    r.add_argument("--delete", action="store_true", help="delete (default: a dry run that only logs)")
    r.add_argument("--timeout", type=int, default=3600, help="seconds to wait for one room's deletion")
    args = p.parse_args()
    (purge_media if args.what == "media" else purge_rooms)(args)


if __name__ == "__main__":
    try:
        main()
    except (ApiError, OSError) as e:
        sys.exit("%s failed: %s" % (sys.argv[1] if len(sys.argv) > 1 else "purge", e))
