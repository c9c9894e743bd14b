/**
 * Synapse's shared-secret registration as a Python function (standard
 * library only), for the scripts that make accounts on the host: the
 * initial admin (provision/synapse), the maintenance account (the purges)
 * and the alert room's bot (not an admin).
 * It needs `hashlib, hmac, json, sys, urllib.error, urllib.request` imported.
 */
export const REGISTER_USER_PY = `def register_user(base_url, secret_file, user, password, admin):
    """Registers user (a server admin when admin is True) with the secret in secret_file: "created", or "exists" when the name is taken."""
    url = base_url + "/_synapse/admin/v1/register"
    secret = open(secret_file).read().strip().encode()
    nonce = json.load(urllib.request.urlopen(url, timeout=30))["nonce"]
    kind = b"admin" if admin else b"notadmin"
    mac = hmac.new(secret, b"\\0".join([nonce.encode(), user.encode(), password.encode(), kind]), hashlib.sha1).hexdigest()
    body = json.dumps({"nonce": nonce, "username": user, "password": password, "admin": admin, "mac": mac}).encode()
    try:
        urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}), timeout=30)
        return "created"
    except urllib.error.HTTPError as e:
        err = json.load(e)
        if err.get("errcode") == "M_USER_IN_USE":
            return "exists"
        sys.exit("registering the user failed: %s %s" % (e.code, err.get("error")))
`;

/**
 * A call of Synapse's HTTP APIs (client and admin) as a Python function
 * (standard library only): JSON in and out, an access token when given;
 * an error answer raises `ApiError` with its status and body. For the
 * scripts on the host that talk to Synapse: the maintenance purges and the
 * alert room's relay. It needs `json, urllib.error, urllib.request`.
 */
export const API_CALL_PY = `class ApiError(Exception):
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
`;
