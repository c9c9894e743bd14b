/** The type token of a component: `matrix:index:<Component>`. */
export function typeToken(component: string): string {
    return `matrix:index:${component}`;
}

/** Child resources are named `<parent>-<role>`, as pulumi-eks and awsx do, so they stay unique per stack. */
export function childName(parent: string, role: string): string {
    return `${parent}-${role}`;
}
