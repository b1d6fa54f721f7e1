// The real programs for the browser tests: status_server, status_client and
// status_web, started on free ports; and Debian's Chromium through
// playwright-core. The binaries' paths come in through STATUS_SERVER,
// STATUS_CLIENT and STATUS_WEB (`cargo test` sets them: tests/browser.rs).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const BOUND_MS = 15000; // a generous bound for anything to happen

function binary(variable) {
  const path = process.env[variable];
  if (!path || !existsSync(path)) {
    throw new Error(`${variable} must name the built binary (cargo test --release sets it; see README)`);
  }
  // Absolute: the server runs in a folder of its own.
  return resolve(path);
}

export const bins = {
  get server() { return binary("STATUS_SERVER"); },
  get client() { return binary("STATUS_CLIENT"); },
  get web() { return binary("STATUS_WEB"); },
};

/** Where screenshots go: a folder in the test output (`target/browser`). */
export function screenshotPath(name) {
  const dir = resolve(process.env.SCREENSHOT_DIR || "target/browser");
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

/** A child process whose output lines can be waited for. */
export class Proc {
  constructor(command, args, options = {}) {
    this.lines = [];
    this.waiters = [];
    this.child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], ...options });
    this.exited = new Promise((done) => this.child.on("exit", (code, signal) => done({ code, signal })));
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let rest = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        rest += chunk;
        let cut;
        while ((cut = rest.indexOf("\n")) >= 0) {
          this.line(rest.slice(0, cut));
          rest = rest.slice(cut + 1);
        }
      });
    }
  }

  line(text) {
    this.lines.push(text);
    this.waiters = this.waiters.filter((w) => !w(text));
  }

  /** The first line (seen or to come) that matches `pattern`, as its match. */
  waitFor(pattern, what = String(pattern), bound = BOUND_MS) {
    for (const line of this.lines) {
      const m = line.match(pattern);
      if (m) return Promise.resolve(m);
    }
    return new Promise((done, fail) => {
      const timer = setTimeout(() => fail(new Error(
        `no line matching ${what} within ${bound} ms; output:\n${this.lines.join("\n")}`)), bound);
      this.waiters.push((line) => {
        const m = line.match(pattern);
        if (m) { clearTimeout(timer); done(m); }
        return Boolean(m);
      });
    });
  }

  /** Stops it (SIGTERM, or SIGKILL) and waits for its exit. */
  async stop(signal = "SIGTERM") {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** A status server; `port` and `publish` may be given to come back where it was. */
export async function startServer({ port = 0, publish = "tcp://127.0.0.1:*", args = [], state } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "status-board-web-"));
  const storage = state ? ["--state", state] : ["--in-memory"];
  const all = [String(port), ...storage, ...(publish ? ["--publish", publish] : []), ...args];
  const proc = new Proc(bins.server, all, { cwd: dir });
  const [, bound] = await proc.waitFor(/^Waiting for clients on port '(\d+)'/, "the Waiting line");
  let published = null;
  if (publish) [, published] = await proc.waitFor(/^Publishing changes on '([^']+)'/, "the Publishing line");
  return { proc, port: Number(bound), publish: published, endpoint: `tcp://127.0.0.1:${bound}`, dir };
}

/** status_web on `listen` (a free HTTP port by default). */
export async function startWeb(endpoint, args = [], listen = "127.0.0.1:0") {
  const proc = new Proc(bins.web, ["--endpoint", endpoint, "--listen", listen, ...args]);
  const [, url] = await proc.waitFor(/^status_web: serving (http:\/\/\S+)/, "the serving line");
  return { proc, url };
}

/** status_client with `args`; resolves with its exit code and output. */
export function runClient(args, env = {}) {
  return new Promise((done, fail) => {
    const child = spawn(bins.client, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH, XDG_CONFIG_HOME: "/nonexistent", ...env },
    });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill("SIGKILL"); fail(new Error(`status_client ${args.join(" ")} hung`)); }, BOUND_MS);
    child.on("exit", (code) => { clearTimeout(timer); done({ code, stdout, stderr }); });
  });
}

/** Sets a status with status_client, and checks it was taken. */
export async function set(server, name, text) {
  const { code, stderr } = await runClient(["--endpoint", server.endpoint, name, "--set", text, "--quiet"]);
  if (code !== 0) throw new Error(`status_client ${name} --set failed (${code}): ${stderr}`);
}

export const PASSWORD = "correct horse";

/** A users file for `--auth`, each user with PASSWORD: lines of `NAME[:RIGHTS]`. */
export async function usersFile(lines) {
  const hasher = new Proc(bins.server, ["--hash-password"]);
  hasher.child.stdin.end(PASSWORD + "\n");
  const [hash] = await hasher.waitFor(/^\$argon2id\$\S+$/, "a PHC hash");
  await hasher.exited;
  const dir = mkdtempSync(join(tmpdir(), "status-board-users-"));
  const path = join(dir, "users");
  const text = lines.map((l) => {
    const [name, rights] = l.split(":");
    return rights ? `${name}:${hash}:${rights}` : `${name}:${hash}`;
  }).join("\n") + "\n";
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}

/** How many established TCP connections have `port` as their local port (Linux). */
export function connectionsTo(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  let count = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try { text = readFileSync(table, "utf8"); } catch { continue; }
    for (const row of text.split("\n").slice(1)) {
      const f = row.trim().split(/\s+/);
      // local_address is f[1] (ADDR:PORT), st is f[3]: 01 = ESTABLISHED.
      if (f.length > 3 && f[1].endsWith(":" + hex) && f[3] === "01") count++;
    }
  }
  return count;
}

/** Chromium's path, or why the browser tests cannot run. */
export function chromiumPath() {
  const path = process.env.CHROMIUM || "/usr/bin/chromium";
  return existsSync(path) ? { path } : { missing: `no Chromium at ${path} (apt-get install --no-install-recommends chromium, or set CHROMIUM)` };
}

/** Debian's Chromium, headless, as this closed machine needs it. */
export async function launch() {
  const { chromium } = await import("playwright-core");
  const { path, missing } = chromiumPath();
  if (missing) throw new Error(missing);
  return chromium.launch({
    executablePath: path,
    headless: true,
    args: [
      "--no-sandbox", // as root, Chromium's sandbox will not start
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      // A closed network refuses Chromium's own calls home, many at a time.
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * Why a browser test cannot run here, or null. Outside CI such a test is
 * skipped with this reason; under CI=true it runs, and fails saying why.
 */
export async function browserSkip() {
  let why = chromiumPath().missing;
  if (!why) {
    try { await import("playwright-core"); } catch { why = "playwright-core is not installed (npm ci --prefix tests/browser)"; }
  }
  if (!why) return false;
  return process.env.CI === "true" ? false : why;
}
