import * as pulumi from "@pulumi/pulumi";

import { elementFiles, ElementWebOptions, ElementWebSettings, resolveElementWebSettings } from "../src/model/element";
import { componentLabel } from "../src/model/errors";
import { elementInstallScript } from "../src/provision/element";
import { Host } from "./Host";
import { childName, typeToken } from "./naming";
import { hostScript } from "./remote";
import { SynapseHomeserver } from "./SynapseHomeserver";

export interface ElementWebArgs extends ElementWebOptions {
    /** The host Element's files are installed on (the one whose web server serves `webRoot`). */
    host: Host;
    /**
     * The homeserver Element talks to: a SynapseHomeserver, or its server
     * name and public base URL as plain values (a homeserver this stack does
     * not manage). Its host must differ from `domain`.
     */
    synapse: SynapseHomeserver | { serverName: string; publicBaseUrl: string };
    /**
     * Element's settings already resolved from these options (MatrixStack passes its
     * plan's: see `planStack`): used as they are, so they are resolved once
     * per deployment. Default: resolved here.
     */
    resolved?: ElementWebSettings;
}

/**
 * Element Web on a Host: a pinned release, downloaded on the host and
 * verified against its pinned SHA-256 before use, one directory per version
 * behind an atomically switched `current` link, old versions pruned, and its
 * config.json pointing at the homeserver. Serving it (a TLS vhost for
 * `domain` with root `webRoot`) is the reverse proxy's part.
 */
export class ElementWeb extends pulumi.ComponentResource {
    /** The resolved settings as plain values. */
    readonly settings: ElementWebSettings;
    /** The DNS name Element is served on. */
    readonly domain: string;
    /** The directory to serve: a symlink to the current version, with config.json inside. */
    readonly webRoot: string;
    /** The rendered config.json (also reachable as `<webRoot>/config.json`). */
    readonly configPath: string;
    /** Depend on this to run once the release and its config are in place. */
    readonly ready: pulumi.Resource;

    constructor(name: string, args: ElementWebArgs, opts?: pulumi.ComponentResourceOptions) {
        super(typeToken("ElementWeb"), name, {}, opts);
        const component = componentLabel("ElementWeb", name);
        const { host, synapse, resolved, ...options } = args;
        const homeserver = synapse instanceof SynapseHomeserver ? synapse.settings : synapse;
        const s = resolved ?? resolveElementWebSettings(component, options, { serverName: homeserver.serverName, publicBaseUrl: homeserver.publicBaseUrl });
        const files = elementFiles(s.paths);
        this.settings = s;
        this.domain = s.domain;
        this.webRoot = files.current;
        this.configPath = files.config;
        this.ready = hostScript(childName(name, "install"), { host, script: elementInstallScript(s), timeout: "20m" }, { parent: this });
        this.registerOutputs({ domain: this.domain, webRoot: this.webRoot, configPath: this.configPath });
    }
}
