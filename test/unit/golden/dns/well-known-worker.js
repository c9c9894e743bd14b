// pulumi-matrix stack golden: Matrix well-known for example.com
// Serves the Matrix discovery documents on example.com/.well-known/matrix/*; other paths go to the site's origin.
const DOCUMENTS = {
    "/.well-known/matrix/server": {
        "m.server": "matrix.example.com:8448"
    },
    "/.well-known/matrix/client": {
        "m.homeserver": {
            "base_url": "https://matrix.example.com"
        }
    }
};

const HEADERS = {
    "Content-Type": "application/json",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization",
    "Cache-Control": "public, max-age=3600",
};

export default {
    async fetch(request) {
        const path = new URL(request.url).pathname;
        if (!Object.prototype.hasOwnProperty.call(DOCUMENTS, path)) return fetch(request);
        const document = DOCUMENTS[path];
        if (request.method === "OPTIONS") return new Response(null, { status: 204, headers: HEADERS });
        if (request.method !== "GET" && request.method !== "HEAD") return new Response(null, { status: 405, headers: { ...HEADERS, Allow: "GET, HEAD, OPTIONS" } });
        return new Response(request.method === "HEAD" ? null : JSON.stringify(document), { headers: HEADERS });
    },
};
