// api.js is the dashboard's only way to the server: the public REST API,
// the same one the SDKs and scripts use. It keeps the superuser's token
// in localStorage, so that a reload keeps the session, and reports a 401
// to a request that carried the token as the end of the session.

const TOKEN_KEY = "underhood.dashboard.token";

/** APIError is an answer other than 2xx: status, and the body PocketBase-style ({message, data}). */
export class APIError extends Error {
    constructor(status, body) {
        super(body?.message || `The server answered ${status}.`);
        this.status = status;
        this.body = body ?? {};
    }
}

/** session holds the superuser's token. */
export const session = {
    get token() {
        return localStorage.getItem(TOKEN_KEY) ?? "";
    },
    save(token) {
        localStorage.setItem(TOKEN_KEY, token);
    },
    clear() {
        localStorage.removeItem(TOKEN_KEY);
    },
};

let sessionEnded = () => {};

/** onSessionEnd sets what happens when the server refuses the token (expired or revoked). */
export function onSessionEnd(fn) {
    sessionEnded = fn;
}

/**
 * request sends a JSON request and returns the decoded answer. With
 * signedIn false it sends no token (sign-in and install). It throws an
 * APIError; status 0 means the server could not be reached.
 */
export async function request(method, path, body, { signedIn = true } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = signedIn ? session.token : "";
    if (token) headers.Authorization = token;
    let res;
    try {
        res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
    } catch {
        throw new APIError(0, { message: "The server cannot be reached. Check that it is running, then try again." });
    }
    const text = await res.text();
    let data = null;
    try {
        data = text ? JSON.parse(text) : null;
    } catch {
        data = { message: `The server answered ${res.status} with something that is not JSON.` };
    }
    if (res.ok) return data;
    const err = new APIError(res.status, data);
    // The token was refused: it expired, or the superuser was signed out
    // everywhere (auth-revoke), or deleted.
    if (res.status === 401 && token && token === session.token) {
        session.clear();
        sessionEnded();
    }
    throw err;
}

/** signIn stores the token of a successful auth answer and returns its record. */
export function signIn(answer) {
    session.save(answer.token);
    return answer.record;
}

const SUPERUSERS = "/api/collections/_superusers";

export const superusers = {
    authWithPassword: (identity, password) =>
        request("POST", `${SUPERUSERS}/auth-with-password`, { identity, password }, { signedIn: false }),
    authWithTOTP: (mfaId, code) => request("POST", `${SUPERUSERS}/auth-with-totp`, { mfaId, code }, { signedIn: false }),
    requestOTP: (email) => request("POST", `${SUPERUSERS}/request-otp`, { email }, { signedIn: false }),
    authWithOTP: (otpId, code, mfaId) =>
        request("POST", `${SUPERUSERS}/auth-with-otp`, { otpId, password: code, mfaId }, { signedIn: false }),
    authRefresh: () => request("POST", `${SUPERUSERS}/auth-refresh`),
};

/**
 * installLinkWorks reports whether the install token would still be
 * accepted; it does not use it up. (GET /api/install answers the API's
 * own page; only its status matters here.)
 */
export async function installLinkWorks(token) {
    try {
        const res = await fetch(`/api/install?token=${encodeURIComponent(token)}`, { cache: "no-store" });
        return res.status !== 403;
    } catch {
        return true; // unreachable now: the form's submit will say so
    }
}

/** install creates the first superuser with the one-time token the server printed. */
export function install(token, email, password, passwordConfirm) {
    return request("POST", "/api/install", { token, email, password, passwordConfirm }, { signedIn: false });
}
