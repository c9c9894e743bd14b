/**
 * Synapse's shared-secret registration as a Python function (standard
 * library only), for the scripts that make admin accounts on the host: the
 * initial admin (provision/synapse) and the maintenance account (the purges).
 * It needs `hashlib, hmac, json, sys, urllib.error, urllib.request` imported.
 */
export const REGISTER_ADMIN_PY = `def register_admin(base_url, secret_file, user, password):
    """Registers user as a server admin with the secret in secret_file: "created", or "exists" when the name is taken."""
    url = base_url + "/_synapse/admin/v1/register"
    secret = open(secret_file).read().strip().encode()
    nonce = json.load(urllib.request.urlopen(url, timeout=30))["nonce"]
    mac = hmac.new(secret, b"\\0".join([nonce.encode(), user.encode(), password.encode(), b"admin"]), hashlib.sha1).hexdigest()
    body = json.dumps({"nonce": nonce, "username": user, "password": password, "admin": True, "mac": mac}).encode()
    try:
        urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}), timeout=30)
        return "created"
    except urllib.error.HTTPError as e:
        err = json.load(e)
        if err.get("errcode") == "M_USER_IN_USE":
            return "exists"
        sys.exit("registering the admin user failed: %s %s" % (e.code, err.get("error")))
`;
