import * as pulumi from "@pulumi/pulumi";

/** The type token of a component: `matrix:index:<Component>`. */
export function typeToken(component: string): string {
    return `matrix:index:${component}`;
}

/** Child resources are named `<parent>-<role>`, as pulumi-eks and awsx do, so they stay unique per stack. */
export function childName(parent: string, role: string): string {
    return `${parent}-${role}`;
}

/**
 * `opts` plus an alias from the type token a component had under its former
 * name, so a stack deployed before the rename keeps its resources (and their
 * children) instead of replacing them.
 */
export function withFormerType<T extends pulumi.ComponentResourceOptions>(opts: T | undefined, formerComponent: string): T {
    return { ...opts, aliases: [...(opts?.aliases ?? []), { type: typeToken(formerComponent) }] } as T;
}
