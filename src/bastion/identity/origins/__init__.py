r"""Trusted origins (spec §6.2): which URLs and Origin headers point at a trusted origin.

Pure functions over strings and mappings: no I/O, no framework. The HTTP layer builds one
`TrustedOrigins` at start-up with `TrustedOrigins.from_options(base_url, entries, env)`,
widens it per request with `await resolve(...)` when `trusted_origins` is a callable, and
asks `is_trusted`; the open-redirect and Origin/CSRF rules built on it are in `security`.

Matching, as better-auth 1.7.25 does it (`auth/trusted-origins.ts`):

* a plain `http(s)` entry equals the URL's origin (scheme, host, port; the path is ignored,
  so `https://app.example.com/` and `https://app.example.com/cb?x` both have the origin
  `https://app.example.com`);
* an entry with `*`, `**` or `?` is a glob with `/` as separator: against the URL's origin
  when the entry contains `://`, else against its `host[:port]`. `*` never crosses a `/`
  but does cross dots, so `https://*.example.com` matches every subdomain depth. A glob
  host made of digits, dots and wildcards (`192.168.*.*`) admits IPv4 addresses only;
* a custom-scheme entry (`myapp://`, `exp://host/path`) matches by scheme; a pinned
  authority must be equal, a pinned path equal or a parent (`/cb` admits `/cb/x`, not
  `/cbx`, nor `/cb/../x`); in a custom-scheme glob (`exp://192.168.*.*:*/*`) authority
  and path are globs, and a URL with user info never matches;
* a relative URL is trusted only where allowed, and only if it matches spec §6.2's
  `^/(?!/|\\|%2f|%5c)[\w\-.+/@]*(\?[\w\-.+/=&%@]*)?$` (1.7.25 accepts more).

Where better-auth is looser, this module fails closed:

* URLs are parsed the way browsers parse them (WHATWG): `\` counts as `/` in http(s)
  URLs, the host follows the *last* `@`, `https:evil.com` has the host `evil.com`. A host
  that is not plain ASCII letters, digits, `.`, `-`, `_` (percent-escapes, IDN in Unicode
  form), not a canonical IPv4 address (`0x7f.1`) or not a bracketed IPv6 address is never
  trusted, nor is a URL containing whitespace or control characters (they would also let
  a redirect split the `Location` header).
* `javascript:`, `data:`, `vbscript:`, `file:` and `blob:` URLs are never trusted, and such
  entries are refused.
* A host-only glob (`*.example.com`) admits only http(s) URLs; better-auth also lets it
  admit `javascript://x.example.com/%0Aalert(1)`.
* Static entries are checked when built: an http(s) entry with a path, fragment or user
  info, an entry without a scheme that is not a glob, or `host:port`, raises `ValueError`
  (better-auth keeps them and they match nothing). Per-request entries are filtered.
* Plain http(s) entries are canonicalized (`https://App.example.com:443/` is
  `https://app.example.com`; better-auth compares the text as given) and globs match
  ASCII letters in either case.

The parts: `_urls` parses URLs and hosts as browsers do, `_glob` matches better-auth's
globs in linear time, `_matchers` compiles and checks each entry, `_trusted` holds the set
and its per-request widening.
"""

from ._trusted import ENV_VARS, DynamicOrigins, TrustedOrigins, resolve

__all__ = ["ENV_VARS", "DynamicOrigins", "TrustedOrigins", "resolve"]
