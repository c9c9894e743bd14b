/** Secrets in Synapse's extraConfig, at any depth, are refused (issue 19, item 9): homeserver.yaml is readable. */
import * as assert from "node:assert/strict";

import { ConfigError, ConfigErrors } from "../../src/model/errors";
import { resolveSynapseSettings } from "../../src/model/synapse";
import { isSecretKeyName } from "../../src/model/synapse/secrets";
import { TEST_SSH_KEY } from "../support/unit/fixtures";
import { programError } from "../support/unit/programRun";

const VALUE = "SECRETvalue-7f3a";

function resolveWith(extraConfig: Record<string, unknown>) {
    return () => resolveSynapseSettings("S", { serverName: "example.com", extraConfig });
}

/** The error resolving extraConfig throws, as one message. */
function errorOf(extraConfig: Record<string, unknown>): string {
    try {
        resolveWith(extraConfig)();
    } catch (e) {
        assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, String(e));
        return e.message;
    }
    assert.fail(`accepted ${JSON.stringify(extraConfig)}`);
}

/** Each kind of secret at its depth: extraConfig, the path the error names, and what it must say is valid. */
const CASES: [Record<string, unknown>, string, RegExp][] = [
    [
        { oidc_providers: [{ idp_id: "a", client_id: "c", client_secret: VALUE }] },
        "oidc_providers[0].client_secret",
        /top-level oidc_providers out of extraConfig into a YAML file you manage in \/etc\/matrix-synapse\/conf\.d\//,
    ],
    [{ oidc_providers: [{ idp_id: "a" }, { idp_id: "b", client_secret_jwt_key: { key: VALUE } }] }, "oidc_providers[1].client_secret_jwt_key.key", /conf\.d/],
    [{ jwt_config: { enabled: true, secret: VALUE, algorithm: "HS256" } }, "jwt_config.secret", /top-level jwt_config/],
    [
        { media_storage_providers: [{ module: "s3_storage_provider.S3StorageProviderBackend", config: { access_key_id: "AKIA", secret_access_key: VALUE } }] },
        "media_storage_providers[0].config.secret_access_key",
        /conf\.d/,
    ],
    [
        { modules: [{ module: "m.M", config: { nested: { apiToken: VALUE } } }] },
        "modules[0].config.nested.apiToken",
        /module, give the secret the way its documentation says/,
    ],
    [{ modules: [{ module: "m.M", config: { hmac_key: VALUE, db_password: VALUE, "private-key": VALUE } }] }, "modules[0].config.hmac_key", /conf\.d/],
    [
        { password_providers: [{ module: "ldap_auth_provider.LdapAuthProvider", config: { bind_password: VALUE } }] },
        "password_providers[0].config.bind_password",
        /conf\.d/,
    ],
    [{ password_config: { enabled: true, pepper: VALUE } }, "password_config.pepper", /conf\.d/],
    [{ email: { smtp_host: "smtp.example.com", smtp_pass: VALUE } }, "email.smtp_pass", /give it as smtpPassword/],
    [{ turn_shared_secret: VALUE }, "turn_shared_secret", /TurnServer .*turn_shared_secret_path/],
    [{ registration_shared_secret: VALUE }, "registration_shared_secret", /generates it .*registration_shared_secret_path/],
    [{ macaroon_secret_key: VALUE }, "macaroon_secret_key", /generates it .*macaroon_secret_key_path/],
    [{ form_secret: VALUE }, "form_secret", /form_secret_path/],
    [{ worker_replication_secret: VALUE }, "worker_replication_secret", /WorkerPool .*worker_replication_secret_path/],
    [{ redis: { enabled: true, password: VALUE } }, "redis.password", /redis\.password_path/],
    [{ database: { name: "psycopg2", args: { user: "synapse", password: VALUE } } }, "database.args.password", /passfile/],
    [{ recaptcha_private_key: VALUE }, "recaptcha_private_key", /recaptcha_private_key_path/],
    [
        { experimental_features: { msc3861: { enabled: true, client_secret: VALUE } } },
        "experimental_features.msc3861.client_secret",
        /msc3861\.client_secret_path/,
    ],
    [{ experimental_features: { msc3861: { admin_token: 12345678 } } }, "experimental_features.msc3861.admin_token", /msc3861\.admin_token_path/],
    [{ app: { deep: [[{ list: { access_token: VALUE } }]] } }, "app.deep[0][0].list.access_token", /top-level app/],
];

describe("secrets in Synapse's extraConfig", () => {
    for (const [extra, at, valid] of CASES) {
        it(`${at} is refused by its path, its value not shown, saying what is valid`, () => {
            const message = errorOf(extra);
            assert.match(
                message,
                new RegExp(`^S: extraConfig\\.${at.replace(/[.[\]]/g, "\\$&")} is \\[secret, not shown\\]; secrets do not belong in extraConfig`),
            );
            assert.match(message, valid);
            assert.doesNotMatch(message, /SECRETvalue|12345678/);
        });
    }

    it("names every secret at once", () => {
        const message = errorOf({ modules: [{ module: "m.M", config: { hmac_key: VALUE, db_password: VALUE, "private-key": VALUE } }] });
        for (const k of ["hmac_key", "db_password", "private-key"]) assert.match(message, new RegExp(`extraConfig\\.modules\\[0\\]\\.config\\.${k} is`));
    });

    it("keys that only look like secrets pass: ids, *_path files, endpoints, lifetimes, flags, public keys", () => {
        assert.doesNotThrow(
            resolveWith({
                oidc_providers: [
                    {
                        idp_id: "a",
                        client_id: "c",
                        client_secret_path: "/etc/matrix-synapse/oidc-secret",
                        token_endpoint: "https://id.example.com/token",
                        client_secret_jwt_key: { key_file: "/etc/matrix-synapse/oidc.pem" },
                    },
                ],
                redis: { password_path: "/etc/x" },
                turn_shared_secret_path: "/etc/x",
                registration_requires_token: true,
                refresh_token_lifetime: "24h",
                recaptcha_public_key: "6Lc-public",
                email: { subjects: { password_reset: "[%(server_name)s] Password reset" } },
                media_storage_providers: [{ config: { access_key_id: "AKIA", secret_access_key: "" } }],
                password_config: { enabled: true },
            }),
        );
    });

    it("the rule: the last word of the name (snake, kebab or camelCase), or <kind> key", () => {
        const yes = [
            "client_secret",
            "secret",
            "password",
            "smtp_pass",
            "admin_token",
            "apiKey",
            "api_key",
            "secretAccessKey",
            "macaroon_secret_key",
            "private-key",
            "pepper",
        ];
        const no = [
            "client_id",
            "password_path",
            "client_secret_path",
            "token_endpoint",
            "access_token_lifetime",
            "bypass",
            "key",
            "public_key",
            "password_config",
            "key_file",
        ];
        for (const k of yes) assert.ok(isSecretKeyName(k), k);
        for (const k of no) assert.ok(!isSecretKeyName(k), k);
        assert.ok(isSecretKeyName("key", "client_secret_jwt_key"));
    });

    it("through the stack program, the error names matrix:synapseExtraConfig.<path> and never the value", async () => {
        const { message, mocks } = await programError(
            {
                sshHost: "203.0.113.10",
                sshPrivateKey: TEST_SSH_KEY,
                serverName: "example.com",
                publicBaseUrl: "https://matrix.example.com/",
                acmeEmail: "admin@example.com",
                rtc: "none",
                synapseExtraConfig: `oidc_providers:\n  - idp_id: a\n    client_id: c\n    client_secret: ${VALUE}\n`,
            },
            ["sshPrivateKey"],
            0,
        );
        assert.match(message, /^matrix:synapseExtraConfig\.oidc_providers\[0\]\.client_secret is \[secret, not shown\]; secrets do not belong in extraConfig/);
        assert.doesNotMatch(message, /SECRETvalue/);
        assert.deepEqual(
            mocks.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name),
            [],
            "no command for the VM",
        );
    });
});
