import { useState } from "react";
import { authClient, baseURL } from "./auth-client.js";

// What to tell the person when a call fails: the server's message, else why the browser
// could not reach it (down, or a CORS refusal: better-auth's client then has no message).
function failureText(error) {
  return error.message || error.statusText || "Could not reach the server";
}

// Runs one better-auth client call; its error (returned or thrown) as text, else null.
async function attempt(call) {
  try {
    const { error } = await call();
    return error ? failureText(error) : null;
  } catch (thrown) {
    return failureText(thrown);
  }
}

// Bastion's agent API with the session's token as a bearer token (no cookie needed).
async function askAgent(token, question) {
  const response = await fetch(`${baseURL}/api/agents/assistant/generate`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({ messages: question }),
  });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(body.error ?? body.message ?? `HTTP ${response.status}`);
  }
  return body.text;
}

function SignUp() {
  const [error, setError] = useState(null);
  async function onSubmit(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const failure = await attempt(() =>
      authClient.signUp.email({
        name: form.get("name"),
        email: form.get("email"),
        password: form.get("password"),
      }),
    );
    setError(failure);
  }
  return (
    <form onSubmit={onSubmit} aria-labelledby="sign-up">
      <h2 id="sign-up">Sign up</h2>
      <label>
        Name <input name="name" autoComplete="name" required />
      </label>
      <label>
        Email <input name="email" type="email" autoComplete="email" required />
      </label>
      <label>
        Password{" "}
        <input name="password" type="password" autoComplete="new-password" minLength={8} required />
      </label>
      <button type="submit">Sign up</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}

function SignIn() {
  const [error, setError] = useState(null);
  async function onSubmit(event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const failure = await attempt(() =>
      authClient.signIn.email({
        email: form.get("email"),
        password: form.get("password"),
      }),
    );
    setError(failure);
  }
  return (
    <form onSubmit={onSubmit} aria-labelledby="sign-in">
      <h2 id="sign-in">Sign in</h2>
      <label>
        Email <input name="email" type="email" autoComplete="email" required />
      </label>
      <label>
        Password{" "}
        <input name="password" type="password" autoComplete="current-password" required />
      </label>
      <button type="submit">Sign in</button>
      {error && <p role="alert">{error}</p>}
    </form>
  );
}

function Agent({ session }) {
  const [answer, setAnswer] = useState(null);
  const [error, setError] = useState(null);
  async function onClick() {
    setError(null);
    try {
      setAnswer(await askAgent(session.session.token, "Who am I?"));
    } catch (failure) {
      setError(failure.message);
    }
  }
  return (
    <section aria-labelledby="agent">
      <h2 id="agent">The agent</h2>
      <button type="button" onClick={onClick}>
        Ask the agent who I am
      </button>
      {answer && <p data-testid="answer">{answer}</p>}
      {error && <p role="alert">{error}</p>}
    </section>
  );
}

export default function App() {
  const { data: session, isPending, error } = authClient.useSession();

  if (isPending) {
    return <p>Loading…</p>;
  }
  return (
    <main>
      <h1>Bastion + better-auth React client</h1>
      {error && <p role="alert">{failureText(error)}</p>}
      {session ? (
        <>
          <p data-testid="user">
            Signed in as {session.user.name} ({session.user.email})
          </p>
          <Agent session={session} />
          <button type="button" onClick={() => authClient.signOut()}>
            Sign out
          </button>
        </>
      ) : (
        <>
          <SignUp />
          <SignIn />
        </>
      )}
    </main>
  );
}
