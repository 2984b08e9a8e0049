// better-auth's React client, as its docs show it, pointed at Bastion's /api/auth.
import { createAuthClient } from "better-auth/react";

export const baseURL = window.BASTION_URL ?? "http://localhost:4111";

export const authClient = createAuthClient({
  baseURL,
});
