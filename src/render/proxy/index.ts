// The reverse proxy's files, one module per program format: nginx's site and certbot's drop-in and hooks.
export * from "./certbot";
export * from "./nginx";
