import { PASSPHRASE } from "./engine";

/** A release file the VM downloads: its SHA-256 and URL. */
interface Release {
    sha256: string;
    downloadUrl: string;
}

/**
 * The quickstart block with this harness's VM in place of the example VM:
 * every rule must match a README line, so a README change that the suite
 * no longer follows fails here.
 */
export function quickstartScript(
    lines: string[],
    vm: { port: number; keyFile: string; hostKey: string },
    /**
     * The test CA (Pebble on this machine, reached from the VM at qemu's host address), Element's fixture release,
     * MatrixRTC's releases (served from this machine) and the public address the SFU advertises (the VM has no STUN server to ask);
     * without `rtc`, the stack has no MatrixRTC (`rtc none`, the README's alternative on the same line).
     */
    local: {
        acmeDirectoryUrl: string;
        acmeCaFile: string;
        element: { version: string; sha256: string; downloadUrl: string };
        rtc?: { livekit: Release; jwtService: Release; publicAddress: string };
    },
): string {
    const rules: [RegExp, (l: string) => string | string[]][] = [
        [/^npm ci$/, () => []], // the copy links this checkout's node_modules
        [/^export PULUMI_CONFIG_PASSPHRASE=/, () => `export PULUMI_CONFIG_PASSPHRASE='${PASSPHRASE}'`],
        [/^pulumi stack init dev$/, (l) => l],
        [/^pulumi config set sshHost 203\.0\.113\.10$/, () => ["pulumi config set sshHost 127.0.0.1", `pulumi config set sshPort ${vm.port}`]],
        [/^pulumi config set sshUser debian$/, () => "pulumi config set sshUser root"],
        [/^pulumi config set --secret sshPrivateKey < ~\/\.ssh\/id_ed25519$/, () => `pulumi config set --secret sshPrivateKey < ${vm.keyFile}`],
        // The VM's key comes from the harness (it injected it), out of band as the README says: never scanned.
        [/^pulumi config set sshHostKey "ssh-ed25519 AAAA\.\.\."\s+#/, () => `pulumi config set sshHostKey '${vm.hostKey}'`],
        [/^pulumi config set serverName example\.com$/, () => "pulumi config set serverName matrix.test"],
        [/^pulumi config set publicBaseUrl https:\/\/matrix\.example\.com\/$/, () => "pulumi config set publicBaseUrl https://matrix.test/"],
        [/^pulumi config set adminUser admin$/, (l) => l],
        [/^pulumi config set acmeEmail admin@example\.com\b/, (l) => l.replace(/\s+#.*$/, "")],
        [
            /^pulumi config set acmeDirectoryUrl https:\/\/acme-staging-v02\.api\.letsencrypt\.org\/directory\b/,
            () => [`pulumi config set acmeDirectoryUrl ${local.acmeDirectoryUrl}`, `pulumi config set acmeCaBundle < ${local.acmeCaFile}`],
        ],
        [/^pulumi config set elementDomain element\.example\.com\b/, () => "pulumi config set elementDomain element.test"],
        [/^pulumi config set turnDomain turn\.example\.com\b/, () => "pulumi config set turnDomain turn.test"],
        // The releases come from this machine (GitHub is out of reach); the VM has no STUN server to ask for its address.
        [
            /^pulumi config set rtcLivekitSha256 "\$LIVEKIT_SHA256"/,
            () =>
                local.rtc
                    ? [
                          `pulumi config set rtcLivekitSha256 ${local.rtc.livekit.sha256}`,
                          `pulumi config set rtcLivekitDownloadUrl ${local.rtc.livekit.downloadUrl}`,
                          `pulumi config set rtcPublicAddress ${local.rtc.publicAddress}`,
                      ]
                    : "pulumi config set rtc none",
        ],
        [
            /^pulumi config set rtcJwtServiceSha256 "\$LK_JWT_SHA256"\s+# \(or `pulumi config set rtc none`/,
            () =>
                local.rtc
                    ? [
                          `pulumi config set rtcJwtServiceSha256 ${local.rtc.jwtService.sha256}`,
                          `pulumi config set rtcJwtServiceDownloadUrl ${local.rtc.jwtService.downloadUrl}`,
                      ]
                    : [],
        ],
        [/^pulumi config set elementVersion \S+$/, () => `pulumi config set elementVersion ${local.element.version}`],
        [
            /^pulumi config set elementSha256 "\$ELEMENT_SHA256"/,
            () => [`pulumi config set elementSha256 ${local.element.sha256}`, `pulumi config set elementDownloadUrl ${local.element.downloadUrl}`],
        ],
        [
            /^pulumi preview\b/,
            (l) => [
                // This machine only: time comes from qemu's host side.
                "pulumi config set --path 'ntpServers[0]' 10.0.2.2",
                l.replace(/\s+#.*$/, ""),
            ],
        ],
        [/^pulumi up$/, (l) => l],
        [/^pulumi stack output adminPassword --show-secrets$/, (l) => `${l} > .e2e-admin-password`],
    ];
    const out: string[] = [];
    const used = new Set<number>();
    for (const line of lines) {
        const i = rules.findIndex(([re]) => re.test(line));
        if (i < 0) throw new Error(`the README quickstart has a line the suite does not know how to follow: ${line}`);
        used.add(i);
        const r = rules[i][1](line);
        out.push(...(Array.isArray(r) ? r : [r]));
    }
    const unused = rules.filter((_, i) => !used.has(i)).map(([re]) => re.source);
    if (unused.length) throw new Error(`the README quickstart no longer has lines the suite expects: ${unused.join(", ")}`);
    return out.join("\n");
}
