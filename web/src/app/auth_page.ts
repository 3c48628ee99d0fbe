/**
 * The page's side of signing in: with an aws config, finish a sign-in the hosted UI answered, show
 * "Sign in" / "Sign out", and keep `config.credentials` fresh before every use (the jobs API, KMS).
 * With a local config nothing changes: the credentials are the local stack's demo tenant's.
 */
import { AuthError, beginSignIn, browserEnv, completeSignIn, Session } from "./auth";
import { type PageConfig, loadConfig } from "./config";

let session: Session | null = null;

/** The page's own URL without query or fragment: the app client's only callback and logout URL. */
function redirectUri(): string {
  return `${location.origin}${location.pathname}`;
}

function controls(): { box: HTMLElement; button: HTMLButtonElement; status: HTMLSpanElement } {
  let box = document.querySelector<HTMLElement>("#auth");
  if (!box) {
    box = document.createElement("p");
    box.id = "auth";
    box.className = "muted";
    box.append(document.createElement("button"), document.createElement("span"));
    document.querySelector("#stack")?.after(box);
  }
  return { box, button: box.querySelector("button")!, status: box.querySelector("span")! };
}

function show(config: PageConfig, current: Session, message = ""): void {
  const { box, button, status } = controls();
  box.dataset["state"] = current.signedIn ? "signed-in" : "signed-out";
  button.textContent = current.signedIn ? "Sign out" : "Sign in";
  button.onclick = () =>
    void (current.signedIn ? current.signOut() : beginSignIn(config.sign_in!, browserEnv(), current.redirectUri));
  status.textContent = message || (current.signedIn ? ` signed in to ${config.sign_in!.user_pool_id}` : " sign in to submit images");
}

/** The config, and on AWS a session: a hosted-UI answer in the address bar is redeemed here. */
export async function loadSignedInConfig(): Promise<PageConfig> {
  const config = await loadConfig();
  if (config.tier !== "aws" || !config.sign_in) return config;
  session = new Session(config.sign_in, browserEnv(), redirectUri());
  let message = "";
  try {
    await completeSignIn(config.sign_in, browserEnv(), session.redirectUri);
    if (session.signedIn) await freshCredentials(config);
  } catch (error) {
    message = ` ${error instanceof Error ? error.message : String(error)}`;
  }
  show(config, session, message);
  return config;
}

/** Before each use of the credentials: refreshed when they expire within the margin (auth.ts). */
export async function freshCredentials(config: PageConfig): Promise<void> {
  if (config.tier !== "aws") return;
  if (!session?.signedIn) throw new AuthError("sign in first (the button at the top)");
  try {
    const { accessKeyId, secretAccessKey, sessionToken } = await session.credentials();
    config.credentials = { accessKeyId, secretAccessKey, sessionToken };
  } catch (error) {
    show(config, session, ` ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
}
